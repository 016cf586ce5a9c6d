"""opencart adapter over real HTTP against the OpenCart 3.0 API fake."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts.base import Context, Record, Rejected, TryLater, make_client
from statusctl.carts.opencart import OpenCartAdapter

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_opencart import KEY, OpenCartFake, make_store, mappings, secrets
from .fakeserver import Answer, FakeServer


@pytest.fixture
def fake() -> OpenCartFake:
    return OpenCartFake()


@pytest.fixture
def server(fake: OpenCartFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def deliver_all(url: str, *payloads: Any, between: Any = None, maps: Any = None, good: bool = True,
                resend: bool = False, attempt: int = 1, **options: str) -> Context:
    """Deliver payloads with one adapter (one kept token); `between()` runs after each one.

    With `resend` the payloads are attempts `attempt`, `attempt` + 1, … of one record (as after a
    crash), else first attempts of records queued now.
    """
    ctx = Context(make_store(url, good, **options), secrets(good), mappings() if maps is None else maps)
    queued = time.time()

    async def go() -> None:
        async with make_client() as client:
            adapter = OpenCartAdapter(client, ctx)
            for n, payload in enumerate(payloads):
                record = Record("rec", attempt + n, payload, queued) if resend else Record(f"rec-{n}", 1, payload, queued)
                ctx.secrets["_status"] = str(await adapter.deliver(record))
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
    ctx = deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True)
    assert ctx.secrets["_status"] == "200"  # the deciding answer's status, for stack history
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


def test_error_with_http_200_is_a_failure_asked_once(fake: OpenCartFake, server: FakeServer) -> None:
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = "999"
    with pytest.raises(Rejected, match="Order could not be found") as err:
        deliver_all(server.base_url, shipped_payload(), payload)  # the second one on a kept token
    assert err.value.status == 200
    assert routes(server) == ["api/login", "api/order/info", "api/order/history", "api/order/info"]


def test_a_wrong_key_is_refused_without_showing_it(fake: OpenCartFake, server: FakeServer) -> None:
    with pytest.raises(Rejected, match="refused the API login: wrong API username or key") as err:
        deliver_all(server.base_url, shipped_payload(), good=False)
    assert err.value.answer == "[]"
    assert KEY not in err.value.reason + err.value.answer


def test_a_refused_ip_says_where_to_allow_it(fake: OpenCartFake, server: FakeServer) -> None:
    fake.allowed_ips = {"203.0.113.9"}
    with pytest.raises(Rejected, match="not allowed to access this API. Add this machine's IP.*System > Users > API") as err:
        deliver_all(server.base_url, shipped_payload())
    assert "Incorrect API Key" not in err.value.reason


def test_an_order_already_at_the_target_status_still_gets_the_comment(fake: OpenCartFake, server: FakeServer) -> None:
    fake.orders["501"]["order_status_id"] = "3"  # the merchant marked it Shipped already
    deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True)
    [history] = fake.histories
    assert history["order_status_id"] == "3" and "1Z999AA10123456784" in history["comment"]


def test_a_resend_whose_earlier_attempt_never_arrived_posts(fake: OpenCartFake, server: FakeServer) -> None:
    fake.orders["501"]["order_status_id"] = "3"
    server.fail_next(Answer(500, ""), times=1)  # attempt 1: OpenCart with its database down
    with pytest.raises(TryLater):
        deliver_all(server.base_url, shipped_payload(), resend=True)
    deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True, attempt=2)
    assert len(fake.histories) == 1


def test_a_send_cut_short_by_a_crash_is_resent_without_a_second_entry(fake: OpenCartFake, server: FakeServer) -> None:
    # A SIGKILL mid-send leaves no outcome, so the resend is attempt 1 again: only the claim count
    # (2) says the first send may have reached OpenCart, as it did here.
    fake.orders["501"]["order_status_id"] = "3"
    ctx = Context(make_store(server.base_url, True), secrets(True), mappings())
    queued = time.time()

    async def go() -> None:
        async with make_client() as client:
            adapter = OpenCartAdapter(client, ctx)
            await adapter.deliver(Record("rec", 1, shipped_payload(), queued, claims=1))
            await adapter.deliver(Record("rec", 1, shipped_payload(), queued, claims=2))

    asyncio.run(go())
    assert len(fake.histories) == 1


def test_the_shops_time_zone_is_read_for_resends(fake: OpenCartFake, server: FakeServer) -> None:
    """A shop on Auckland time writes date_modified 13 hours ahead of UTC in December."""
    fake.zone = "Pacific/Auckland"
    fake.orders["501"]["order_status_id"] = "3"
    deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True, timezone="Pacific/Auckland")
    assert len(fake.histories) == 1
    fake.zone = "America/Los_Angeles"  # read as UTC, its times look 8 hours old: the resend posts again
    deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True)
    assert len(fake.histories) == 3


def test_a_bad_time_zone_option_is_refused(server: FakeServer) -> None:
    with pytest.raises(Rejected, match="option timezone 'Mars/Base' is not a time zone name"):
        deliver_all(server.base_url, shipped_payload(), shipped_payload(), resend=True, timezone="Mars/Base")


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
    for value in ("²", "0"):  # '²'.isdigit() is true: it used to be posted as the order_status_id
        with pytest.raises(Rejected, match="numeric order_status_id"):
            deliver_all(server.base_url, relabel("Cancelled", "Processing"), maps={"cancelled": {"opencart": value}})
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
