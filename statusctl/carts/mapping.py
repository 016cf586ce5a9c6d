"""A label's mapping value read at send time through its cart type's rule in `core/mapvalues`.

The same rule refused the value when it was saved (`labels add --map`); a value
saved before that rule existed, or one written into the database by hand, is
rejected here whole, before any write to the cart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from statusctl.carts.base import Rejected
from statusctl.domain.mapvalues import MappingError

T = TypeVar("T")


def read_mapping(rule: Callable[[str], T], label: str, value: str) -> T:
    """`rule(value)`; Rejected with the label, the value and what the cart takes when it cannot take it."""
    try:
        return rule(value)
    except MappingError as exc:
        raise Rejected(exc.sentence(label)) from None
