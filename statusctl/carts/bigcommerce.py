"""BigCommerce over the REST API v2 (orders, shipments).

One record becomes, in this order:

1. one shipment per package (`POST orders/{id}/shipments`, which e-mails the
   customer), unless the order already has a shipment with the package's
   tracking number — or, for a package without one, the same items created by
   an earlier attempt; the record's note goes into the first new shipment's
   `comments` (BigCommerce has no customer notes of its own);
2. `PUT orders/{id}` with `{"status_id": N}` and nothing else (a PUT that
   touches products clears the order's discounts); an order label mapped to
   `shipment` sets no status (BigCommerce sets Shipped / Partially Shipped
   itself as shipments are created).

Item labels other than shipments cannot be shown to the customer here and are
not sent. Rate limits: every answer carries `X-Rate-Limit-Requests-Left` and
`X-Rate-Limit-Time-Reset-Ms`; when no requests are left the store is paused
(`ctx.hold_until`) and a 429 is a TryLater after the reset time.
"""

from __future__ import annotations

from typing import Any

from statusctl.carts.base import Record, Rejected, deciding_status
from statusctl.carts.mapping import read_mapping
from statusctl.carts.restutil import (
    RestAdapter,
    items_key,
    made_by_this_record,
    new_order_label,
    new_shipments,
    order_id,
    payload_of,
    segment,
)
from statusctl.domain import mapvalues
from statusctl.domain.carriers import carrier
from statusctl.domain.display import plural
from statusctl.domain.record import PackageItem, PackagePart

MAX_TRACKING = 50  # the API's limit on tracking_number
PAGE = 50
MAX_PAGES = 100


class BigCommerceAdapter(RestAdapter):
    cart = "bigcommerce"

    def base_url(self) -> str:
        return super().base_url() + "/v2"

    def auth(self) -> dict[str, Any]:
        return {"headers": {"X-Auth-Token": self.secret("token"), "Content-Type": "application/json"}}

    def error_detail(self, body: Any) -> str | None:
        # v2 answers errors as a list of {"status": N, "message": "…"} (sometimes with "details").
        entries = body if isinstance(body, list) else [body]
        messages = []
        for entry in entries:
            if isinstance(entry, dict):
                text = entry.get("message") or entry.get("title")
                if text:
                    details = entry.get("details")
                    messages.append(f"{text} ({details})" if details else str(text))
        return "; ".join(messages) or None

    async def deliver(self, record: Record) -> int | None:
        payload = payload_of(record)
        oid = segment(order_id(payload))
        label = new_order_label(payload)
        # None: no status (a label mapped to `shipment`, which the shipments say)
        status_id = read_mapping(mapvalues.bigcommerce, label, self.ctx.require_mapping(label)) if label else None
        packages = [p for p in payload["packages"] if any(i["quantity"] > 0 for i in p["items"])]
        for package in packages:  # checked before any write, so a bad one leaves nothing half done
            if len(package["tracking"] or "") > MAX_TRACKING:
                raise Rejected(
                    f"Tracking number {package['tracking']!r} is {len(package['tracking'] or '')} characters; "
                    f"BigCommerce takes at most {MAX_TRACKING}."
                )
        if packages:
            await self.ship(oid, payload["packages"], payload["note"], record)
        if status_id is not None:
            await self.call("PUT", f"/orders/{oid}", f"set order {oid} to status {status_id}",
                            json={"status_id": status_id}, uid=f"{record.uid}.status")
        return deciding_status()

    async def ship(self, oid: str, packages: list[PackagePart], note: str | None, record: Record) -> None:
        existing = await self.get_all(f"/orders/{oid}/shipments", f"read shipments of order {oid}")
        numbers = {str(s.get("tracking_number") or "").strip() for s in existing}
        todo = [(n, p) for n, p in enumerate(packages) if any(i["quantity"] > 0 for i in p["items"])]
        if all((p["tracking"] or "").strip() in numbers - {""} for _, p in todo):
            return  # every package is there already: no need to read addresses
        addresses = await self.get_all(f"/orders/{oid}/shipping_addresses", f"read addresses of order {oid}")
        if not addresses:
            raise Rejected(f"BigCommerce order {oid} has no shipping address, so it cannot take a shipment.")
        lookup = len(addresses) > 1 or any(not i["cart_line_id"] for _, p in todo for i in p["items"])
        products = await self.get_all(f"/orders/{oid}/products", f"read products of order {oid}") if lookup else []
        earlier = {_shipment_key(s) for s in existing
                   if not str(s.get("tracking_number") or "").strip()
                   and made_by_this_record(s.get("date_created"), record)}
        for new in new_shipments(packages, note, numbers, earlier, lambda i: _product_id(oid, i, products)):
            package, tracking, items, n = new.package, new.tracking, new.lines, new.index
            body: dict[str, Any] = {
                "order_address_id": _address_id(oid, [p for p, _ in items], addresses, products),
                "tracking_number": tracking,
                "shipping_provider": "",  # not a BigCommerce shipping integration
                # links the number to the carrier's page; an unknown carrier goes as shipping_method only
                "tracking_carrier": known.bigcommerce if (known := carrier(package["carrier"])) else "",
                "items": [{"order_product_id": p, "quantity": q} for p, q in items],
            }
            if package["carrier"]:
                body["shipping_method"] = package["carrier"]
            if new.comment:
                body["comments"] = new.comment
            await self.call("POST", f"/orders/{oid}/shipments", f"create shipment {tracking or n + 1} of order {oid}",
                            json=body, uid=f"{record.uid}.shipment.{n}")

    async def get_all(self, path: str, what: str) -> list[dict[str, Any]]:
        """Every row of a v2 list, page by page (an empty list is a 204 without a body)."""
        rows: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            chunk = await self.call("GET", path, what, params={"limit": str(PAGE), "page": str(page)})
            if chunk is None:
                break
            if not isinstance(chunk, list):
                raise Rejected(f"{what}: BigCommerce answered {type(chunk).__name__}, not a list.")
            rows += [row for row in chunk if isinstance(row, dict)]
            if len(chunk) < PAGE:
                break
        return rows

    async def check(self) -> str:
        counts = await self.call("GET", "/orders/count", "count orders")
        count = counts.get("count", "?") if isinstance(counts, dict) else "?"
        return f"BigCommerce v2: {plural(count, 'order')} visible"


def _product_id(oid: str, item: PackageItem, products: list[dict[str, Any]]) -> int:
    """The order_product_id of a package item: its cart_line_id, else the order product with its SKU."""
    line = (item["cart_line_id"] or "").strip()
    if products:
        for field in ("id", "product_id"):  # an order line id, or else the catalog product's id
            found = [p for p in products if line and str(p.get(field)) == line]
            if len(found) == 1:
                return int(found[0]["id"])
        found = [p for p in products if str(p.get("sku") or "") == item["sku"]]
        if len(found) == 1:
            return int(found[0]["id"])
        raise Rejected(
            f"Item {item['sku']} (cart line {line or 'none'}) matches "
            f"{'several' if found else 'no'} products of BigCommerce order {oid}."
        )
    if not (line.isascii() and line.isdigit()):  # '²'.isdigit() is true, int('²') raises
        raise Rejected(f"Item {item['sku']} has cart line {line!r}; BigCommerce order product ids are numbers.")
    return int(line)


def _address_id(oid: str, product_ids: list[int], addresses: list[dict[str, Any]],
                products: list[dict[str, Any]]) -> int:
    """The shipping address a package goes to (orders with several addresses: the products')."""
    if len(addresses) == 1:
        return int(addresses[0]["id"])
    found = {str(p.get("order_address_id")) for p in products if p.get("id") in product_ids}
    if len(found) != 1 or not (one := next(iter(found))).isascii() or not one.isdigit():
        raise Rejected(f"A package of BigCommerce order {oid} holds items for {len(found)} shipping addresses; "
                       f"ship each address's items in its own package.")
    return int(found.pop())


def _shipment_key(shipment: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    items = shipment.get("items") or []
    return items_key([(str(i.get("order_product_id")), int(i.get("quantity") or 0))
                      for i in items if isinstance(i, dict)])


ADAPTER = BigCommerceAdapter
