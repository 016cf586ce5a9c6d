"""shopify adapter over real HTTP against the GraphQL fake: fulfilments, cancel, tags, throttling."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from statusctl.carts import shopify, shopify_gql
from statusctl.carts.base import Context, Record, Rejected, TryLater, make_client
from statusctl.carts.shopify import ShopifyAdapter
from statusctl.carts.shopify_gql import DEFAULT_API_VERSION, DOCUMENTS
from statusctl.domain.matrix import CART_TYPES
from statusctl.domain.stores import Store

from ..docs import documented
from ..helpers import cli
from .contract import shipped_payload
from .fake_shopify import (
    CLIENT_ID,
    CLIENT_SECRET,
    ShopifyFake,
    make_order,
    make_store,
    mappings,
    secrets,
)
from .fakeserver import Answer, FakeServer, Request, json_answer
from .shopify_schema import VERSIONS, paths, problems, require


@pytest.fixture
def fake() -> ShopifyFake:
    return ShopifyFake()


@pytest.fixture
def server(fake: ShopifyFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def send(url: str, payload: Any, *, store: Store | None = None, secret: dict[str, str] | None = None,
         ctx: Context | None = None, uid: str = "rec-1") -> Context:
    ctx = ctx or Context(store or make_store(url), secret or secrets(), mappings())

    async def go() -> None:
        async with make_client() as client:
            await ShopifyAdapter(client, ctx).deliver(Record(uid, 1, payload, time.time()))

    asyncio.run(go())
    return ctx


def call(url: str, fn: Callable[[ShopifyAdapter], Any], **options: str) -> Any:
    async def go() -> Any:
        async with make_client() as client:
            return await fn(ShopifyAdapter(client, Context(make_store(url, **options), secrets(), mappings())))

    return asyncio.run(go())


def labelled(order_label: str | None, previous: str | None = "Processing", items: bool = False) -> dict[str, Any]:
    payload = copy.deepcopy(shipped_payload())
    payload["order"]["label"], payload["order"]["previous_label"] = order_label, previous
    payload["packages"] = []
    for item in payload["items"]:
        item["changed"] = items
    return payload


# -- the documents against the schema ----------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_is_valid_against_the_real_admin_schema(version: str) -> None:
    require()
    for name, text in DOCUMENTS.items():
        assert problems(version, text) == [], name


def test_documents_lists_every_document_the_adapter_holds() -> None:
    held = {value for module in (shopify_gql, shopify) for value in vars(module).values()
            if isinstance(value, str) and value.lstrip().startswith(("query ", "mutation "))}
    assert held == set(DOCUMENTS.values())


def test_the_default_api_version_is_one_we_test_against() -> None:
    assert DEFAULT_API_VERSION in VERSIONS
    assert DEFAULT_API_VERSION in CART_TYPES["shopify"].options["api_version"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_real_schema_refuses_what_shopify_refuses(version: str) -> None:
    require()
    assert problems(version, "query { order(id: $id) { id } }")  # undeclared variable
    assert problems(version, "query Q($id: ID!) { order(id: $id) { id trackingNumber } }")
    assert problems(version, "mutation M($f: FulfillmentInput!) { fulfillmentCreate(input: $f) { userErrors { message } } }")
    assert problems(version, "mutation M($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors } }")
    bad = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "x", "lineItems": []}]}
    assert problems(version, DOCUMENTS["FULFIL"], {"fulfillment": bad})
    assert problems(version, DOCUMENTS["CANCEL"], {"orderId": "gid://shopify/Order/1", "restock": True,
                                                   "reason": "NOT_A_REASON"})
    assert problems(version, DOCUMENTS["ORDER"], {}) and not problems(version, DOCUMENTS["ORDER"], {"id": "x"})


def test_every_request_of_these_tests_was_checked_against_every_real_schema(fake: ShopifyFake,
                                                                            server: FakeServer) -> None:
    send(server.base_url, shipped_payload())
    send(server.base_url, labelled("Cancelled"))
    assert len(fake.checked) == len(fake.documents) >= 3
    assert {text for text, _ in fake.checked} >= {DOCUMENTS["ORDER"], DOCUMENTS["FULFIL"], DOCUMENTS["CANCEL"]}


def test_documents_use_the_fields_carts_md_names() -> None:
    order = paths(DOCUMENTS["ORDER"])
    assert {"order(id)", "order.fulfillmentOrders.nodes.id", "order.fulfillmentOrders.nodes.status",
            "order.fulfillmentOrders.nodes.lineItems.nodes.id",
            "order.fulfillmentOrders.nodes.lineItems.nodes.remainingQuantity",
            "order.fulfillments.trackingInfo.number"} <= order
    assert {"fulfillmentCreate(fulfillment)", "fulfillmentCreate.userErrors.message"} <= paths(DOCUMENTS["FULFIL"])
    cancel = paths(DOCUMENTS["CANCEL"])
    assert {f"orderCancel({a})" for a in ("orderId", "reason", "refundMethod", "restock", "notifyCustomer",
                                          "staffNote")} <= cancel
    assert "tagsAdd(tags)" in paths(DOCUMENTS["TAGS_ADD"])
    assert paths(DOCUMENTS["SHOP"]) == {"shop", "shop.name"}


# -- fulfilment --------------------------------------------------------------------------------

def test_ship_creates_one_fulfilment_with_tracking_carrier_and_lines(fake: ShopifyFake, server: FakeServer) -> None:
    send(server.base_url, shipped_payload())
    [made] = fake.with_tracking("501", "1Z999AA10123456784")
    assert made["trackingInfo"][0]["company"] == "UPS"
    assert made["notifyCustomer"] is True
    assert sorted((n["lineItem"]["id"], n["quantity"]) for n in made["fulfillmentLineItems"]["nodes"]) == [
        ("gid://shopify/LineItem/9001", 2), ("gid://shopify/LineItem/9002", 1)]
    assert fake.versions and set(fake.versions) == {"2026-07"}
    assert server.requests[0].headers["x-shopify-access-token"] == secrets()["token"]


def test_resend_after_the_answer_was_lost_creates_no_second_fulfilment(fake: ShopifyFake) -> None:
    def lose_mutation_answers(req: Request) -> Answer:
        answer = fake(req)
        return Answer(200, b"{", reset=True) if b"fulfillmentCreate" in req.body else answer

    with FakeServer(lose_mutation_answers) as srv, pytest.raises(httpx.TransportError):
        send(srv.base_url, shipped_payload())
    with FakeServer(fake) as srv:
        send(srv.base_url, shipped_payload())
    assert len(fake.with_tracking("501", "1Z999AA10123456784")) == 1
    assert sum(b"fulfillmentCreate" in d.encode() for d in fake.documents) == 1


def test_a_partial_shipment_then_the_rest(fake: ShopifyFake, server: FakeServer) -> None:
    first = shipped_payload(tracking="TRACK-A")
    first["packages"][0]["items"] = [{"sku": "MUG-1", "cart_line_id": "9001", "quantity": 1}]
    second = shipped_payload(tracking="TRACK-B")
    send(server.base_url, first)
    send(server.base_url, second)
    send(server.base_url, second)
    [a], [b] = fake.with_tracking("501", "TRACK-A"), fake.with_tracking("501", "TRACK-B")
    assert [n["quantity"] for n in a["fulfillmentLineItems"]["nodes"]] == [1]
    assert sorted(n["quantity"] for n in b["fulfillmentLineItems"]["nodes"]) == [1, 1]
    assert fake.orders["gid://shopify/Order/501"].fos[0].status == "CLOSED"


def test_two_locations_two_fulfilments_and_a_crash_between_them_is_resumed() -> None:
    fake = ShopifyFake([make_order("501", [("9001", "MUG-1", 2), ("9002", "TEE-L", 1)], ["1", "2"])])
    seen = []

    def crash_second(req: Request) -> Answer:
        answer = fake(req)
        if b"fulfillmentCreate" in req.body:
            seen.append(1)
            if len(seen) == 2:
                return Answer(200, b"{", reset=True)
        return answer

    with FakeServer(crash_second) as srv, pytest.raises(httpx.TransportError):
        send(srv.base_url, shipped_payload())
    with FakeServer(fake) as srv:
        send(srv.base_url, shipped_payload())
        send(srv.base_url, shipped_payload())
    made = fake.with_tracking("501", "1Z999AA10123456784")
    assert len(made) == 2  # one per location, as Shopify requires
    lines = sorted(n["lineItem"]["id"] for f in made for n in f["fulfillmentLineItems"]["nodes"])
    assert lines == ["gid://shopify/LineItem/9001", "gid://shopify/LineItem/9002"]


def test_items_without_cart_line_id_are_matched_by_sku(fake: ShopifyFake, server: FakeServer) -> None:
    payload = shipped_payload()
    for pi in payload["packages"][0]["items"]:
        pi["cart_line_id"] = None
    send(server.base_url, payload)
    assert len(fake.with_tracking("501", "1Z999AA10123456784")) == 1


def test_an_unknown_line_is_rejected_by_name(server: FakeServer) -> None:
    payload = shipped_payload()
    payload["packages"][0]["items"][0]["cart_line_id"] = "4242"
    with pytest.raises(Rejected, match="LineItem/4242"):
        send(server.base_url, payload)


def test_a_fulfilment_order_on_hold_is_rejected_with_its_status() -> None:
    fake = ShopifyFake()
    fake.orders["gid://shopify/Order/501"].fos[0].status = "ON_HOLD"
    with FakeServer(fake) as srv, pytest.raises(Rejected, match="ON_HOLD"):
        send(srv.base_url, shipped_payload())


def test_changed_items_without_packages_are_fulfilled_as_shipped(fake: ShopifyFake, server: FakeServer) -> None:
    payload = labelled(None, None, items=True)
    payload["items"][0]["shipped"] = 1
    send(server.base_url, payload)
    [made] = fake.orders["gid://shopify/Order/501"].fulfilments
    assert made["trackingInfo"] == []
    assert sorted(n["quantity"] for n in made["fulfillmentLineItems"]["nodes"]) == [1, 1]


def test_order_shipped_without_packages_fulfils_what_is_left(fake: ShopifyFake, server: FakeServer) -> None:
    send(server.base_url, labelled("Order Shipped"))
    send(server.base_url, labelled("Order Shipped"))
    assert len(fake.orders["gid://shopify/Order/501"].fulfilments) == 1
    assert fake.orders["gid://shopify/Order/501"].fos[0].status == "CLOSED"


def test_user_errors_with_http_200_are_a_failure(server: FakeServer, fake: ShopifyFake) -> None:
    fake.fulfil = lambda data: {"fulfillment": None, "userErrors": [  # type: ignore[method-assign]
        {"field": ["fulfillment", "trackingInfo"], "message": "Tracking number is invalid"}]}
    with pytest.raises(Rejected, match="fulfillment.trackingInfo: Tracking number is invalid"):
        send(server.base_url, shipped_payload())


def test_unknown_order_is_rejected(server: FakeServer) -> None:
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = "999"
    with pytest.raises(Rejected, match="no order gid://shopify/Order/999"):
        send(server.base_url, payload)


# -- cancel and tags ---------------------------------------------------------------------------

def test_cancel_uses_order_cancel_once(fake: ShopifyFake, server: FakeServer) -> None:
    send(server.base_url, labelled("Cancelled"))
    send(server.base_url, labelled("Cancelled"))
    assert fake.orders["gid://shopify/Order/501"].cancelled_at
    cancels = [r.json() for r in server.requests if b"orderCancel(" in r.body]
    assert len(cancels) == 1
    variables = cancels[0]["variables"]
    assert variables["orderId"] == "gid://shopify/Order/501"
    assert variables["restock"] is True and variables["reason"] == "OTHER"
    assert variables["refundMethod"] == {"originalPaymentMethodsRefund": False}


def test_other_labels_become_tags_only_with_the_tags_option(fake: ShopifyFake, server: FakeServer) -> None:
    send(server.base_url, labelled("On Hold"))
    assert server.requests == []  # internal: nothing sent
    tagged = make_store(server.base_url, tags="true")
    send(server.base_url, labelled("On Hold"), store=tagged)
    send(server.base_url, labelled("On Hold"), store=tagged)
    assert fake.orders["gid://shopify/Order/501"].tags == ["On Hold"]
    assert sum(b"tagsAdd(" in r.body for r in server.requests) == 1


def test_a_mapping_shopify_does_not_understand_is_rejected(server: FakeServer) -> None:
    ctx = Context(make_store(server.base_url), secrets(), {"on hold": {"shopify": "hold"}})
    with pytest.raises(Rejected, match="'On Hold' maps to 'hold'"):
        send(server.base_url, labelled("On Hold"), ctx=ctx)


# -- rate limits, errors, credentials ----------------------------------------------------------

def test_throttled_waits_as_the_cost_says(fake: ShopifyFake, server: FakeServer) -> None:
    fake.throttled, fake.available = 1, 100.0
    ctx = Context(make_store(server.base_url), secrets(), mappings())
    with pytest.raises(TryLater) as err:
        send(server.base_url, shipped_payload(), ctx=ctx)
    assert err.value.retry_after == 4  # (500 requested - 100 available) / 100 per second
    assert ctx.hold_until > time.monotonic() + 3
    assert "throttled" in err.value.reason


def test_429_honours_a_fractional_retry_after(server: FakeServer) -> None:
    server.fail_next(json_answer(429, {"errors": "Exceeded 2 calls per second"}, Retry_After="2.0"))
    with pytest.raises(TryLater) as err:
        send(server.base_url, shipped_payload())
    assert err.value.retry_after == 2.0


def test_a_nearly_empty_bucket_holds_the_store(fake: ShopifyFake, server: FakeServer) -> None:
    fake.available = 10.0
    ctx = send(server.base_url, shipped_payload())
    assert ctx.hold_until > time.monotonic()


def test_graphql_errors_with_http_200_are_a_failure(server: FakeServer) -> None:
    with pytest.raises(Rejected, match="refused the call: .*Cannot query field 'nope' on type 'Shop'"):
        call(server.base_url, lambda a: a.gql("query { shop { nope } }", {}, "probe"))


def test_check_names_the_shop_and_version(server: FakeServer) -> None:
    assert call(server.base_url, lambda a: a.check()) == "Shopify shop 'Statusctl Test Shop', Admin API 2026-07"
    assert "2026-07" in call(server.base_url, lambda a: a.check(), api_version="2026-07")
    with pytest.raises(Rejected, match="api_version"):
        call(server.base_url, lambda a: a.check(), api_version="latest")


def test_dev_dashboard_apps_get_and_renew_client_credentials_tokens(fake: ShopifyFake, server: FakeServer) -> None:
    store = Store("shop", "shopify", server.base_url, {}, {})
    ctx = Context(store, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, mappings())

    async def go() -> None:
        async with make_client() as client:
            adapter = ShopifyAdapter(client, ctx)
            await adapter.check()
            fake.tokens = {t for t in fake.tokens if not t.startswith("shpat_cc")}  # the token expired
            await adapter.check()

    asyncio.run(go())
    grants = [r for r in server.requests if r.path == "/admin/oauth/access_token"]
    assert len(grants) == 2
    assert all(CLIENT_SECRET not in ctx.excerpt(r.body.decode()) for r in server.requests)


# -- the documented setup, through the CLI -----------------------------------------------------


def test_the_documented_store_line_works(server: FakeServer) -> None:
    add, test = documented("shopify")
    env = {"SHOPIFY_TOKEN": secrets()["token"]}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    local = [*add[:2], "local", *add[3:]]
    local[local.index("--url") + 1] = server.base_url
    cli(*local, env=env)
    assert "OK: Shopify shop 'Statusctl Test Shop', Admin API 2026-07" in cli("stores", "test", "local", env=env).stdout
    assert "FAILED" in cli("stores", "test", "local", env={"SHOPIFY_TOKEN": "shpat_wrong"}, code=1).stderr
