"""What every cart module's fake provides to the shared contract suite (test_contract.py).

Each `tests/carts/fake_<cart>.py` exports `CASE = ContractCase(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .fakeserver import Handler


@dataclass
class ContractCase:
    cart: str
    # A fresh vendor fake (its state) for one test: the handler FakeServer serves.
    make_fake: Callable[[], Handler]
    # The destination store for a fake served at base_url, with good (or bad) credentials.
    store: Callable[[str, bool], Store]
    # The secrets the store resolves to (by value) for those credentials.
    secrets: Callable[[bool], dict[str, str]]
    # How many times the cart now holds the effect of this payload (e.g. shipments with its tracking);
    # the contract sends a shipping payload twice and expects 1.
    effects: Callable[[Handler, Payload], int]
    # Label mappings for the payload's labels (label.lower() -> cart -> value), when the cart needs them.
    mappings: dict[str, dict[str, str]] | None = None
    # Whether check() (stores test) can run against this cart type.
    testable: bool = True


def shipped_payload(number: str = "1001", tracking: str = "1Z999AA10123456784") -> Payload:
    """An order fully shipped in one package: the richest record, used by the contract."""
    return {
        "store": "shop",
        "order": {
            "number": number,
            "cart_order_id": "501",
            "label": "Order Shipped",
            "previous_label": "Order Received",
            "postal_code": "90210",
            "date": "2026-11-20",
        },
        "items": [
            {"sku": "MUG-1", "cart_line_id": "9001", "name": "Mug", "label": "Item Shipped",
             "previous_label": None, "quantity": 2, "shipped": 2, "cancelled": False, "changed": True},
            {"sku": "TEE-L", "cart_line_id": "9002", "name": "T-shirt L", "label": "Item Shipped",
             "previous_label": None, "quantity": 1, "shipped": 1, "cancelled": False, "changed": True},
        ],
        "packages": [
            {"tracking": tracking, "carrier": "UPS", "shipped_at": "2026-11-21T10:00:00Z",
             "items": [{"sku": "MUG-1", "cart_line_id": "9001", "quantity": 2},
                       {"sku": "TEE-L", "cart_line_id": "9002", "quantity": 1}]},
        ],
        "note": "Shipped with UPS",
        "events": ["item-shipped", "order-shipped"],
        "changed_at": "2026-11-21T10:00:00Z",
    }


def as_any(x: Any) -> Any:
    return x
