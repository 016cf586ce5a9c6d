"""opencart adapter over real HTTP against the OpenCart 3.0 API fake."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts.base import Context, Record, Rejected, make_client
from statusctl.carts.opencart import OpenCartAdapter

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_opencart import KEY, OpenCartFake, make_store, mappings, secrets
from .fakeserver import FakeServer


@pytest.fixture
def fake() -> OpenCartFake:
    return OpenCartFake()


@pytest.fixture
def server(fake: OpenCartFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def deliver_all(url: str, *payloads: Any, between: Any = None, maps: Any = None, good: bool = True) -> Context:
    """Deliver payloads with one adapter (one kept token); `between()` runs after each one."""
    ctx = Context(make_store(url, good), secrets(good), mappings() if maps is None else maps)

    async def go() -> None:
        async with make_client() as client:
            adapter = OpenCartAdapter(client, ctx)
            for n, payload in enumerate(payloads):
                await adapter.deliver(Record(f"rec-{n}", 1, payload, time.time()))
                if between:
                    between()

    asyncio.run(go())
    return ctx


def relabel(label: str | None, previous: str | None, packages: bool = True) -> dict[str, Any]:
    payload = copy.deepcopy(shipped_payload())
    payload["order"]["label"], payload["order"]["previous_label"] = label, previous
    if not packages:
        payload["packages"], payload["note"] = [], None
    return payload


def routes(server: FakeServer) -> list[str]:
    return [r.arg("route") or "" for r in server.requests]


def test_ship_posts_status_and_comment_once(fake: OpenCartFake, server: FakeServer) -> None:
    deliver_all(server.base_url, shipped_payload(), shipped_payload())
    [history] = fake.histories
    assert history == {"order_id": "501", "order_status_id": "3", "notify": "1", "override": "0",
                       "comment": "Shipped with UPS\nTracking: UPS 1Z999AA10123456784"}
    assert routes(server) == ["api/login", "api/order/info", "api/order/history", "api/order/info"]
    post = server.requests[2]
    assert post.method == "POST" and post.arg("order_id") == "501" and post.arg("api_token")


def test_an_expired_session_is_renewed(fake: OpenCartFake, server: FakeServer) -> None:
    later = relabel("Cancelled", "Order Shipped", packages=False)
    deliver_all(server.base_url, shipped_payload(), later, between=fake.expire_sessions)
    assert [h["order_status_id"] for h in fake.histories] == ["3", "7"]
    assert routes(server).count("api/login") == 2


def test_error_with_http_200_is_a_failure(fake: OpenCartFake, server: FakeServer) -> None:
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = "999"
    with pytest.raises(Rejected, match="Order could not be found"):
        deliver_all(server.base_url, payload)
    assert fake.histories == []


@pytest.mark.parametrize("empty", [False, True])
def test_a_wrong_key_is_refused_without_showing_it(fake: OpenCartFake, server: FakeServer, empty: bool) -> None:
    fake.empty_on_bad_key = empty
    with pytest.raises(Rejected, match="refused the API login") as err:
        deliver_all(server.base_url, shipped_payload(), good=False)
    assert ("wrong API username or key" if empty else "Incorrect API Key") in err.value.reason
    assert KEY not in err.value.reason + err.value.answer


def test_a_refused_ip_says_where_to_allow_it(fake: OpenCartFake, server: FakeServer) -> None:
    fake.allowed_ips = {"203.0.113.9"}
    with pytest.raises(Rejected, match="not allowed.*System > Users > API"):
        deliver_all(server.base_url, shipped_payload())


def test_php_notices_before_the_json_are_tolerated(fake: OpenCartFake, server: FakeServer) -> None:
    fake.notices = True
    deliver_all(server.base_url, shipped_payload())
    assert len(fake.histories) == 1


def test_same_status_in_opencart_still_sends_the_tracking_comment(fake: OpenCartFake, server: FakeServer) -> None:
    deliver_all(server.base_url, relabel("Partially Shipped", "Processing"))
    [history] = fake.histories
    assert history["order_status_id"] == "2" and "1Z999AA10123456784" in history["comment"]


def test_item_only_records_keep_the_status_and_add_the_comment(fake: OpenCartFake, server: FakeServer) -> None:
    deliver_all(server.base_url, relabel("Partially Shipped", "Partially Shipped"))
    [history] = fake.histories
    assert history["order_status_id"] == "2" and history["comment"].startswith("Shipped with UPS")


def test_nothing_to_say_sends_nothing(server: FakeServer) -> None:
    deliver_all(server.base_url, relabel("Order Shipped", "Order Shipped", packages=False))
    assert server.requests == []


def test_mappings_must_exist_and_be_numeric(server: FakeServer) -> None:
    with pytest.raises(Rejected, match="'On Hold' has no mapping for cart type opencart"):
        deliver_all(server.base_url, relabel("On Hold", "Processing"))
    with pytest.raises(Rejected, match="numeric order_status_id"):
        deliver_all(server.base_url, relabel("Cancelled", "Processing"), maps={"cancelled": {"opencart": "Canceled"}})
    assert server.requests == []


def test_check_logs_in(server: FakeServer) -> None:
    async def go(good: bool) -> str:
        async with make_client() as client:
            return await OpenCartAdapter(client, Context(make_store(server.base_url, good), secrets(good))).check()

    assert asyncio.run(go(True)) == "OpenCart accepted the API login (username, key and this machine's IP)"
    with pytest.raises(Rejected):
        asyncio.run(go(False))


def test_the_api_token_is_scrubbed(fake: OpenCartFake, server: FakeServer) -> None:
    ctx = deliver_all(server.base_url, shipped_payload())
    token = server.requests[1].arg("api_token") or ""
    assert token and ctx.excerpt(f"echo {token}") == "echo ••••••"



def test_the_documented_store_line_works(fake: OpenCartFake, server: FakeServer) -> None:
    add, test = documented("opencart")
    env = {"OPENCART_API_KEY": KEY}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    local = [*add[:2], "local", *add[3:]]
    local[local.index("--url") + 1] = server.base_url
    cli(*local, env=env)
    assert "OK: OpenCart accepted the API login" in cli("stores", "test", "local", env=env).stdout
    fake.allowed_ips = set()
    failed = cli("stores", "test", "local", env=env, code=1).stderr
    assert "not allowed" in failed and KEY not in failed
