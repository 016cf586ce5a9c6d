"""What a status change works on: orders as loaded, one command's change, and its result.

`OrderState` and `ItemState` are an order and its items in memory (the change
engine changes them, then writes them in batches); `Command` collects what one
command changed on one order, the makings of its record's payload (previous
labels, events, package parts, notes); `Result` is what the user reads of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from statusctl.domain.errors import NotFound, shown
from statusctl.domain.record import PackagePart


@dataclass(slots=True)
class ItemState:
    id: int
    line: int
    sku: str
    name: str
    quantity: int
    shipped: int
    cancelled: bool
    label: str | None
    cart_line_id: str | None

    @property
    def remaining(self) -> int:
        return 0 if self.cancelled else max(0, self.quantity - self.shipped)

    @property
    def fully_shipped(self) -> bool:
        return not self.cancelled and self.shipped >= self.quantity


@dataclass
class OrderState:
    id: int
    number: str
    store: str
    cart_order_id: str | None
    label: str | None
    postal_code: str
    date: str
    items: list[ItemState]
    packages: dict[str, int] = field(default_factory=dict)  # tracking -> package id

    def item(self, sku: str) -> ItemState:
        for item in self.items:
            if item.sku == sku:
                return item
        raise NotFound(f"Order {self.number} has no item with SKU {shown(sku)}.")


@dataclass
class Result:
    """What one command did to one order, for the user to read."""

    order: str
    changes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # events whose "fires" is off
    record: str | None = None  # uid of the queued record
    destination: str | None = None
    internal_only: bool = False  # labels changed with notify on, but nowhere to send

    def as_dict(self) -> dict[str, object]:
        return {
            "order": self.order,
            "changes": self.changes,
            "skipped_events": self.skipped,
            "record": self.record,
            "destination": self.destination,
            "internal_only": self.internal_only,
        }


class Command:
    """The label changes one command makes to one order, before they are written."""

    def __init__(self, order: OrderState) -> None:
        self.order = order
        self.order_from: str | None = order.label
        self.item_from: dict[int, str | None] = {}
        self.events: list[str] = []
        self.notify = False
        self.new_tracking = False
        self.packages: list[PackagePart] = []
        self.notes: list[str] = []
        self.wanted = False  # a grouped command: some step asked for a record
        self.result = Result(order.number)

    def add_part(
        self, wanted: list[tuple[ItemState, int]], tracking: str | None, carrier: str | None, now: str, known: bool
    ) -> None:
        """The shipped items as a package of the payload; `known`: the package existed before this shipment."""
        parts = [i for i in self.packages if i["tracking"] == tracking] if known else None
        if not parts:
            self.packages.append({"tracking": tracking, "carrier": carrier, "shipped_at": now, "items": [
                {"sku": i.sku, "cart_line_id": i.cart_line_id, "quantity": q} for i, q in wanted]})
            return
        for item, amount in wanted:  # rows of one apply adding to one package: one part, summed per item
            same = next((p for p in parts[0]["items"] if p["sku"] == item.sku), None)
            if same is None:
                parts[0]["items"].append({"sku": item.sku, "cart_line_id": item.cart_line_id, "quantity": amount})
            else:
                same["quantity"] += amount
