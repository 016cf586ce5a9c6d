"""What each cart type accepts as a label's mapping value (`labels add --map CART=VALUE`).

Checked when a mapping is saved, so that a value the cart cannot take is refused
then, with the reason its adapter would give at send time, instead of failing
records later. Pure functions, no httpx: `labels add` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable

BIGCOMMERCE_STATUS_IDS = range(0, 15)  # CARTS.md: 0 Incomplete … 14 Partially Refunded
MAGENTO_ACTIONS = ("ship", "cancel", "hold", "unhold", "comment")
SHOPIFY_ACTIONS = ("fulfil", "fulfill", "cancel", "tag", "none")
_WOO_SLUG = re.compile(r"^[a-z0-9_-]{1,20}$")  # WooCommerce keeps "wc-" + slug in a 20-character column
_MAGENTO_STATUS = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _woocommerce(value: str) -> str | None:
    if value == "note" or _WOO_SLUG.match(value):
        return None
    return ("a WooCommerce order status is a slug of lower-case letters, digits, '-' or '_' "
            "(e.g. completed, on-hold), or note to say the label in a customer note")


def _bigcommerce(value: str) -> str | None:
    if value == "shipment" or (value.isascii() and value.isdigit() and int(value) in BIGCOMMERCE_STATUS_IDS):
        return None
    return ("a BigCommerce order status is a status_id number from 0 to 14 (e.g. 2 Shipped, 5 Cancelled), "
            "or shipment for a label the shipments say")


def _magento2(value: str) -> str | None:
    word, sep, status = value.partition(":")
    word = word.strip().lower()
    if word in MAGENTO_ACTIONS and not sep:
        return None
    if word == "comment" and _MAGENTO_STATUS.match(status.strip()):
        return None
    return f"magento2 takes one of {', '.join(MAGENTO_ACTIONS)} or comment:<status code>"


def _shopify(value: str) -> str | None:
    if value.lower() in SHOPIFY_ACTIONS:
        return None
    return "Shopify has no free order status; shopify takes only fulfil, cancel, tag or none"


def _opencart(value: str) -> str | None:
    if value.isascii() and value.isdigit() and int(value) > 0:
        return None
    return ("OpenCart needs a numeric order_status_id (System > Localisation > Order Statuses), "
            "e.g. 3 Shipped")


def _prestashop(value: str) -> str | None:
    if value.isascii() and value.isdigit():
        return None if int(value) > 0 else "a PrestaShop order state id is a number of at least 1"
    if len(value) <= 64:  # the name of an order state, resolved through /api/order_states
        return None
    return "a PrestaShop order state is its id or its name (at most 64 characters)"


VALIDATORS: dict[str, Callable[[str], str | None]] = {
    "woocommerce": _woocommerce,
    "bigcommerce": _bigcommerce,
    "magento2": _magento2,
    "shopify": _shopify,
    "opencart": _opencart,
    "prestashop": _prestashop,
}


def validate_mapping(cart: str, value: str) -> str | None:
    """Why `value` cannot be a label's mapping for cart type `cart` (None: it can).

    seti, webhook, oss and none send any text as it is.
    """
    check = VALIDATORS.get(cart)
    return check(value.strip()) if check else None
