"""Helpers for the REST cart tests: deliver a payload or run check() over real HTTP to a fake."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from statusctl.carts.base import Context, Record, adapter_class, make_client
from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import shipped_payload

DEFAULTS = {label.lower(): dict(carts) for label, carts in DEFAULT_MAPPINGS.items()}


def mappings(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    """The default mappings plus `extra` (label -> {cart: value}), keyed as Context wants."""
    out = copy.deepcopy(DEFAULTS)
    for label, carts in extra.items():
        out.setdefault(label.lower(), {}).update(carts)
    return out


def deliver(store: Store, secrets: dict[str, str], payload: Payload | dict[str, Any], *,
            maps: dict[str, dict[str, str]] | None = None, uid: str = "rec-1", queued: float | None = None,
            ctx: Context | None = None) -> Context:
    """Send one record through the store's adapter; returns the Context (for hold_until)."""
    ctx = ctx or Context(store, secrets, DEFAULTS if maps is None else maps)

    async def go() -> None:
        async with make_client() as client:
            record = Record(uid, 1, dict(payload), time.time() if queued is None else queued)
            await adapter_class(store.cart)(client, ctx).deliver(record)

    asyncio.run(go())
    return ctx


def check(store: Store, secrets: dict[str, str]) -> str:
    async def go() -> str:
        async with make_client() as client:
            return await adapter_class(store.cart)(client, Context(store, secrets, DEFAULTS)).check()

    return asyncio.run(go())


def order_change(label: str | None, previous: str | None = "Order Received", *, note: str | None = None,
                 cart_order_id: str | None = "501") -> Payload:
    """A record that changes only the order's label (no items, no packages)."""
    payload = shipped_payload()
    order = payload["order"]
    order["label"], order["previous_label"], order["cart_order_id"] = label, previous, cart_order_id
    for item in payload["items"]:
        item["changed"], item["label"], item["shipped"] = False, None, 0
    payload["packages"] = []
    payload["note"] = note
    payload["events"] = []
    return payload


def item_change(label: str, sku: str = "MUG-1", note: str | None = None) -> Payload:
    """A record that changes one item's label only."""
    payload = order_change(None, None, note=note)
    payload["order"]["label"] = payload["order"]["previous_label"] = "Processing"
    for item in payload["items"]:
        if item["sku"] == sku:
            item["label"], item["changed"] = label, True
    return payload



def local_copy(add: list[str], url: str) -> list[str]:
    """A documented `stores add` line for a store named `local` at `url` (the fake)."""
    local = [*add[:2], "local", *add[3:]]
    local[local.index("--url") + 1] = url
    return local
