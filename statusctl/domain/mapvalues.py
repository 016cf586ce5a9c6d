"""What each cart type accepts as a label's mapping value: one rule per cart type, read twice.

`labels add --map CART=VALUE` checks a value here when it is saved, so that a
value the cart cannot take is refused then, and each adapter reads its mapping
through the same function when it sends, so the two can never disagree. Each
rule returns the value as its adapter uses it, or raises MappingError saying
what the cart takes. Pure functions, no I/O (`labels add` stays fast; core
imports nothing from carts/).
"""

from __future__ import annotations

import re
from collections.abc import Callable

BIGCOMMERCE_STATUS_IDS = range(0, 15)  # CARTS.md: 0 Incomplete … 14 Partially Refunded
BIGCOMMERCE_SHIPMENT = "shipment"  # "the shipments say it": no status of its own
WOOCOMMERCE_NOTE = "note"  # "say the label in the customer note" (Item Shipped's default)
MAGENTO_ACTIONS = ("ship", "cancel", "hold", "unhold", "comment")
SHOPIFY_ACTIONS = {"fulfil": "fulfil", "fulfill": "fulfil", "cancel": "cancel", "tag": "tag", "none": "none"}
PRESTASHOP_NAME_MAX = 64
_WOO_SLUG = re.compile(r"^[a-z0-9_-]{1,20}$")  # WooCommerce keeps "wc-" + slug in a 20-character column
_MAGENTO_STATUS = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class MappingError(ValueError):
    """A mapping value its cart type cannot take; the message says what the cart takes."""

    def __init__(self, cart: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.cart, self.value, self.reason = cart, value, reason

    def sentence(self, label: str) -> str:
        """The send-time error: which label maps to what, why the cart cannot take it, and the fix."""
        return (f"Label {label!r} maps to {self.value!r} for {self.cart}: {self.reason}; "
                f"fix it with --map {self.cart}=VALUE.")


def number(value: str) -> int | None:
    """`value` as a whole number of ASCII digits (`'²'.isdigit()` is true, but int() refuses it), else None."""
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def woocommerce(value: str) -> str:
    """An order status slug, or WOOCOMMERCE_NOTE."""
    value = value.strip()
    if value == WOOCOMMERCE_NOTE or _WOO_SLUG.match(value):
        return value
    raise MappingError("woocommerce", value, "a WooCommerce order status is a slug of lower-case letters, digits, "
                       "'-' or '_' (e.g. completed, on-hold), or note to say the label in a customer note")


def bigcommerce(value: str) -> int | None:
    """The status_id, or None for BIGCOMMERCE_SHIPMENT."""
    value = value.strip()
    if value == BIGCOMMERCE_SHIPMENT:
        return None
    status_id = number(value)
    if status_id is not None and status_id in BIGCOMMERCE_STATUS_IDS:
        return status_id
    raise MappingError("bigcommerce", value, "a BigCommerce order status is a status_id number from 0 to 14 "
                       "(e.g. 2 Shipped, 5 Cancelled), or shipment for a label the shipments say")


def magento2(value: str) -> tuple[str, str | None]:
    """(the action, the status code of a `comment:<status code>` or None)."""
    value = value.strip()
    word, sep, status = value.partition(":")
    word, status = word.strip().lower(), status.strip()
    if word in MAGENTO_ACTIONS and not sep:
        return word, None
    if word == "comment" and _MAGENTO_STATUS.match(status):
        return word, status
    raise MappingError("magento2", value, f"magento2 takes one of {', '.join(MAGENTO_ACTIONS)} or "
                       "comment:<status code> (letters, digits, '_' or '-')")


def shopify(value: str) -> str:
    """The action: fulfil, cancel, tag or none."""
    action = SHOPIFY_ACTIONS.get(value.strip().lower())
    if action is not None:
        return action
    raise MappingError("shopify", value.strip(),
                       "Shopify has no free order status; shopify takes only fulfil, cancel, tag or none")


def opencart(value: str) -> str:
    """The order_status_id, as digits."""
    status_id = number(value)
    if status_id is not None and status_id > 0:
        return str(status_id)
    raise MappingError("opencart", value.strip(), "OpenCart needs a numeric order_status_id "
                       "(System > Localisation > Order Statuses), e.g. 3 Shipped")


def prestashop(value: str) -> int | str:
    """An order state's id (int), or its name (str), which the adapter looks up in /api/order_states."""
    value = value.strip()
    state_id = number(value)
    if state_id is not None:
        if state_id > 0:
            return state_id
        raise MappingError("prestashop", value, "a PrestaShop order state id is a number of at least 1")
    if 0 < len(value) <= PRESTASHOP_NAME_MAX:
        return value
    raise MappingError("prestashop", value, f"a PrestaShop order state is its id or its name "
                       f"(at most {PRESTASHOP_NAME_MAX} characters)")


RULES: dict[str, Callable[[str], object]] = {
    "woocommerce": woocommerce,
    "bigcommerce": bigcommerce,
    "magento2": magento2,
    "shopify": shopify,
    "opencart": opencart,
    "prestashop": prestashop,
}


# Cart types whose adapters never read a mapping: one saved would be silently ignored.
NO_MAPPING = {
    "webhook": "a webhook store is sent the label's own name, so cart type webhook takes no mapping",
    "oss": "the Order Status System shows the label's own name, so cart type oss takes no mapping",
    "none": "cart type none sends nothing to a cart (its records go to the OSS), so it takes no mapping",
}


def validate_mapping(cart: str, value: str) -> str | None:
    """Why `value` cannot be a label's mapping for cart type `cart` (None: it can).

    seti sends any text as it is; webhook, oss and none take no mapping at all.
    """
    if cart in NO_MAPPING:
        return NO_MAPPING[cart]
    rule = RULES.get(cart)
    if rule is None:
        return None
    try:
        rule(value)
    except MappingError as exc:
        return exc.reason
    return None
