"""The rules every adapter shares live in one place each: label change, secrets, JSON, shipments."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest

from statusctl.carts import jsonbody, magento2, oss, restutil, shopify_gql
from statusctl.carts import opencart as opencart_module
from statusctl.carts.base import Context, Record, Rejected, adapter_class, make_client
from statusctl.carts.restutil import new_shipments
from statusctl.domain.record import PackagePart, new_order_label, order_changed

from .contract import shipped_payload
from .fakeserver import FakeServer
from .test_contract import CASES


def relabel(label: str | None, previous: str | None) -> Any:
    payload: Any = copy.deepcopy(shipped_payload())
    payload["order"]["label"], payload["order"]["previous_label"] = label, previous
    return payload


def test_the_order_label_rule() -> None:
    assert new_order_label(relabel("Order Shipped", "Processing")) == "Order Shipped"
    assert new_order_label(relabel("Order Shipped", None)) == "Order Shipped"
    assert new_order_label(relabel("Processing", "Processing")) is None  # unchanged
    assert new_order_label(relabel(None, "Processing")) is None and order_changed(relabel(None, "Processing"))
    assert restutil.new_order_label is new_order_label


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.cart)
def test_every_adapter_refuses_a_missing_secret_alike_and_sends_nothing(case: Any) -> None:
    handler = case.make_fake()
    with FakeServer(handler) as server:
        ctx = Context(case.store(server.base_url, True), {}, case.mappings or {})

        async def go() -> None:
            async with make_client() as client:
                await adapter_class(case.cart)(client, ctx).deliver(Record("rec-1", 1, shipped_payload(), time.time()))  # type: ignore[arg-type]

        with pytest.raises(Rejected) as err:
            asyncio.run(go())
        assert server.requests == []
    assert err.value.reason.startswith(f"Store {ctx.store.name!r} has no secret '")
    assert "add it with --secret-env" in err.value.reason


def test_a_blank_secret_is_a_missing_one() -> None:
    ctx = Context(CASES[0].store("http://127.0.0.1:1", True), {"token": "  ", "user": "u"})
    with pytest.raises(Rejected, match="has no secret 'token' and 'key' \\(or 'x'\\)"):
        ctx.require_secrets("user", "token", "key", instead="'x'")
    assert ctx.require_secrets("user") == ["u"]


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1}', {"a": 1}),
    ("[]", []),
    ('<br />\n<b>Notice</b>: Undefined index: x in /var/www/a.php on line 3<br />\n{"api_token": "t"}',
     {"api_token": "t"}),
    ("PHP Deprecated: f(): Passing null to parameter #1 [$x] is deprecated\n[]", []),
    ("<html><style>a { color: red }</style><body>Welcome</body></html>", None),
    ("", None),
])
def test_one_json_decoder_reads_answers_after_php_notices(text: str, expected: Any) -> None:
    assert jsonbody.decode(text) == expected


def test_every_adapter_decodes_with_it() -> None:
    for module in (restutil, magento2, opencart_module, shopify_gql, oss):
        assert module.decode is jsonbody.decode, module.__name__


def _package(tracking: str | None, *lines: tuple[str, int]) -> PackagePart:
    return {"tracking": tracking, "carrier": "UPS", "shipped_at": "2026-11-21T10:00:00Z",
            "items": [{"sku": sku, "cart_line_id": sku, "quantity": qty} for sku, qty in lines]}


def test_new_shipments_skip_what_the_cart_holds_and_keep_the_note_on_the_first_package() -> None:
    packages = [_package(None, ("1", 0)),  # nothing to ship
                _package("T1", ("1", 1)),  # the cart holds T1: skipped, but it carried the note
                _package(None, ("2", 1), ("2", 1)),  # untracked, made by an earlier attempt
                _package(None, ("3", 2)),
                _package(" T4 ", ("1", 1))]
    earlier = {restutil.items_key([("2", 2)])}
    made = new_shipments(packages, "the note", {"T1"}, earlier, lambda item: int(item["cart_line_id"] or 0))
    assert [(s.index, s.tracking, s.lines, s.comment) for s in made] == [(3, "", [(3, 2)], None),
                                                                        (4, "T4", [(1, 1)], None)]
    first = new_shipments(packages, "the note", set(), set(), lambda item: int(item["cart_line_id"] or 0))
    assert [(s.index, s.comment) for s in first] == [(1, "the note"), (2, None), (3, None), (4, None)]
