"""The cart matrix: what each cart type accepts and how it is configured (pure data).

Kept free of httpx so that `stores add`, `carts` and validation stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CartType:
    name: str
    order_status: str
    item_status: str
    tracking: str
    note: str
    how: str
    accepts_updates: bool
    secrets: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # option -> meaning
    url_hint: str = ""
    has_test: bool = True
    # Alternative complete sets of secrets (default: all of `secrets`).
    secret_sets: tuple[tuple[str, ...], ...] = ()

    @property
    def required_secret_sets(self) -> tuple[tuple[str, ...], ...]:
        return self.secret_sets or ((self.secrets,) if self.secrets else ())


COMMON_OPTIONS = {
    "timeout": "seconds one attempt may take, all its requests together (default 30)",
    "connect_timeout": "connect timeout in seconds (default 5)",
    "allow_http": "true to allow plain http:// to a non-loopback host",
    # The stack's per-store limits (statusctl.domain.limits holds their defaults and checks).
    "max_in_flight": "requests at once to this cart, from all controllers together (default 32)",
    "rate": "requests per second to this cart, e.g. 2 or 0.5 (default: no limit beyond the cart's own headers)",
}

CART_TYPES: dict[str, CartType] = {
    c.name: c
    for c in [
        CartType("seti", "yes (label name)", "yes (XML form)", "yes, several packages", "yes",
                 "Stone Edge generic cart protocol", True, ("user", "password"),
                 {"code": "store code", "xml": "true to send the XML form"}, "the cart script's full URL"),
        CartType("webhook", "yes", "yes", "yes", "yes", "signed JSON POST (Standard Webhooks)", True,
                 ("secret",), {}, "the endpoint's full URL", has_test=False),
        CartType("oss", "yes", "yes", "yes", "yes", "signed JSON POST to a statusctl OSS", True,
                 ("secret",), {}, "the OSS's /api/updates URL"),
        CartType("woocommerce", "yes (slug)", "no (as note)", "Shipment Tracking extension, else note", "yes",
                 "REST wc/v3", True, ("key", "secret"),
                 {"tracking": "extension or note (default note)"}, "the site, e.g. https://shop.example"),
        CartType("bigcommerce", "yes (status_id)", "via shipments", "yes (shipments)", "no (staff notes only)",
                 "REST v2", True, ("token",), {}, "https://api.bigcommerce.com/stores/{store_hash}"),
        CartType("magento2", "ship / cancel / hold / comment-with-status", "via shipments", "yes", "yes (comments)",
                 "REST V1", True, ("token",), {"store_code": "store view code (default 'default')"}, "the site"),
        CartType("shopify", "fulfil / cancel (other labels: order tags with tags=true, else internal)",
                 "via fulfillment orders", "yes", "no",
                 "GraphQL Admin API", True, ("token", "client_id", "client_secret"),
                 {"api_version": "Admin API version (default 2026-07)",
                  "tags": "true to write labels with no Shopify equivalent as order tags (else they stay internal)"},
                 "https://{shop}.myshopify.com", secret_sets=(("token",), ("client_id", "client_secret"))),
        CartType("prestashop", "yes (id_order_state)", "no", "yes (order_carriers)", "yes (messages)",
                 "webservice XML", True, ("key",), {}, "the site"),
        CartType("opencart", "yes (order_status_id)", "no", "in comment", "yes", "3.0 api/order/history", True,
                 ("username", "key"), {"timezone": "the shop's time zone, e.g. Europe/Berlin (default UTC)"}, "the site"),
        CartType("none", "no", "no", "no", "no", "internal only → OSS if set", False, (), {}, "any URL (unused)",
                 has_test=False),
    ]
}

# Default per-cart values of the built-in labels (CARTS.md, "Default label mappings").
# Action words (ship, cancel, hold, comment, note, shipment, fulfil) name what the
# adapter does where the cart has no free status.
# Labels left out for a cart type have no equivalent there (e.g. On Hold in BigCommerce):
# the README says to add one (`labels add NAME --map CART=VALUE`) before sending them.
# A value added here reaches existing databases only through a new migration.
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    "Order Received": {"woocommerce": "note", "magento2": "comment"},
    "Payment Received": {"woocommerce": "processing", "bigcommerce": "11", "magento2": "comment",
                         "prestashop": "Payment accepted", "opencart": "2"},
    "Processing": {"woocommerce": "processing", "bigcommerce": "11", "magento2": "comment",
                   "prestashop": "Processing in progress", "opencart": "2"},
    "On Hold": {"woocommerce": "on-hold", "magento2": "hold"},
    "Partially Shipped": {"woocommerce": "processing", "bigcommerce": "3", "magento2": "ship",
                          "prestashop": "Processing in progress", "opencart": "2", "shopify": "fulfil"},
    "Order Shipped": {"woocommerce": "completed", "bigcommerce": "2", "magento2": "ship",
                      "prestashop": "Shipped", "opencart": "3", "shopify": "fulfil"},
    "Cancelled": {"woocommerce": "cancelled", "bigcommerce": "5", "magento2": "cancel",
                  "prestashop": "Canceled", "opencart": "7", "shopify": "cancel"},
    "Item Shipped": {"woocommerce": "note", "bigcommerce": "shipment", "magento2": "ship", "shopify": "fulfil"},
}
