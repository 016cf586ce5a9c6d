"""Status labels: built-ins, scope, name rules and per-cart mappings (stored by statusctl.storage.labels)."""

from __future__ import annotations

from dataclasses import dataclass, field

from statusctl.domain.errors import InputError, NotFound, shown
from statusctl.domain.mapvalues import validate_mapping
from statusctl.domain.matrix import CART_TYPES

SCOPES = ("item", "order", "both")

BUILTIN_LABELS: list[tuple[str, str]] = [
    ("Order Received", "order"),
    ("Payment Received", "order"),
    ("Processing", "order"),
    ("On Hold", "order"),
    ("Partially Shipped", "order"),
    ("Order Shipped", "order"),
    ("Cancelled", "order"),
    ("Backordered", "item"),
    ("Drop Ship Ordered", "item"),
    ("Item Shipped", "item"),
    ("Item Cancelled", "item"),
    ("Item Returned", "item"),
]


@dataclass
class Label:
    name: str
    scope: str
    builtin: bool
    mappings: dict[str, str] = field(default_factory=dict)

    def fits(self, kind: str) -> bool:
        """Whether this label may be assigned to an `item` or an `order`."""
        return self.scope in (kind, "both")


def check_name(name: str) -> str:
    """1–50 characters, surrounding spaces trimmed, no control characters.

    Quotes are allowed (the original refused them): every statement is parameterised
    and every cart encodes its fields, so "Customer's pickup" arrives as it is.
    """
    clean = name.strip()
    if not 1 <= len(clean) <= 50:
        raise InputError(f"Label name {shown(name)} must be 1 to 50 characters long.")
    if any(ord(ch) < 32 for ch in clean):
        raise InputError(f"Label name {shown(name)} must not contain control characters.")
    return clean


def parse_mapping(text: str) -> tuple[str, str]:
    """`CART=VALUE` with CART from the cart matrix."""
    cart, sep, value = text.partition("=")
    cart = cart.strip().lower()
    if not sep or not value.strip():
        raise InputError(f"--map {shown(text)} must look like CART=VALUE, e.g. woocommerce=completed.")
    if cart not in CART_TYPES:
        raise InputError(f"--map {shown(text)}: unknown cart type {shown(cart)}; cart types: {', '.join(CART_TYPES)}.")
    if len(value.strip()) > 100 or "\x00" in value:
        raise InputError(f"--map {shown(text)}: the value must be at most 100 characters, without NUL.")
    problem = validate_mapping(cart, value)
    if problem:
        raise InputError(f"--map {shown(text)}: {problem}.")
    return cart, value.strip()


def unmapped_labels(labels: list[Label], cart: str) -> list[str]:
    """The order labels (scope order or both) with no value for `cart`, in the labels' order."""
    return [label.name for label in labels if label.fits("order") and cart not in label.mappings]


def find_label(labels: list[Label], name: str) -> Label:
    """The label called `name` (case-insensitive) among `labels`, or NotFound."""
    for label in labels:
        if label.name.lower() == name.strip().lower():
            return label
    raise NotFound(f"Unknown label {shown(name)}; `statusctl labels list` shows them.")
