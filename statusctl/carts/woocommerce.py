"""WooCommerce over the REST API wc/v3 (and the Shipment Tracking extension's API).

One record becomes, in this order:

1. tracking numbers on the Shipment Tracking extension (store option
   `tracking=extension`), each added only when the order does not list it yet
   and only for carriers the extension knows — before the status change, so that
   the "completed order" e-mail carries them. Both WooCommerce's Shipment
   Tracking (1.6) and the free Advanced Shipment Tracking plugin (AST 3.9) serve
   `wc-shipment-tracking/v3/orders/{id}/shipment-trackings` and its
   `/providers`; AST has no top-level `shipment-trackings/providers` (404
   `rest_no_route`), so on that 404 the carriers are read from the order's own
   route (which Shipment Tracking 1.6.20+ marks deprecated, hence not first).
   AST lists only the carriers the merchant enabled (its list comes from
   TrackShip); a tracking number of any other carrier goes into the note;
2. one customer note (`customer_note: true`, e-mailed to the customer) holding
   the record's note, one line per item whose label changed, and the tracking
   numbers not given to the extension — skipped when the order already has the
   same note from an earlier attempt;
3. `PUT orders/{id}` with `{"status": slug}` from the order label's mapping
   (idempotent: WooCommerce mails only on a real change of status). A label
   mapped to `note` changes no status: its name becomes the note's first line.
"""

from __future__ import annotations

from typing import Any

import httpx

from statusctl.carts.base import Record, Rejected, deciding_status
from statusctl.carts.mapping import read_mapping
from statusctl.carts.restutil import (
    RestAdapter,
    changed_items,
    item_line,
    join_lines,
    loose_key,
    made_by_this_record,
    new_order_label,
    order_id,
    payload_of,
    same_text,
    segment,
    tracking_line,
)
from statusctl.domain import mapvalues
from statusctl.domain.display import plural
from statusctl.domain.record import PackagePart

WC = "/wp-json/wc/v3"
TRACKING = "/wp-json/wc-shipment-tracking/v3"


class WooCommerceAdapter(RestAdapter):
    cart = "woocommerce"
    _per_order = False  # the site serves the providers only per order (AST)

    def auth(self) -> dict[str, Any]:
        return {"auth": httpx.BasicAuth(self.secret("key"), self.secret("secret"))}

    def error_detail(self, body: Any) -> str | None:
        # {"code": "woocommerce_rest_…", "message": "…", "data": {"status": N, "params": {…}}}
        if not isinstance(body, dict) or "message" not in body:
            return None
        text = f"{body.get('code') or 'error'}: {body['message']}"
        data = body.get("data")
        params = data.get("params") if isinstance(data, dict) else None
        if isinstance(params, dict) and params:
            text += " (" + "; ".join(f"{k}: {v}" for k, v in params.items()) + ")"
        return text

    @property
    def uses_extension(self) -> bool:
        return self.ctx.store.option("tracking", "note") == "extension"

    async def deliver(self, record: Record) -> int | None:
        payload = payload_of(record)
        oid = segment(order_id(payload))
        label = new_order_label(payload)
        # before any write: fail whole
        slug = read_mapping(mapvalues.woocommerce, label, self.ctx.require_mapping(label)) if label else None
        as_line = label if slug == mapvalues.WOOCOMMERCE_NOTE else None
        if as_line:
            slug = None
        tracked = [p for p in payload["packages"] if p["tracking"]]
        in_note = tracked
        if tracked and self.uses_extension:
            in_note = await self.add_trackings(oid, tracked, record)
        lines = [as_line, payload["note"], *(item_line(i) for i in changed_items(payload))]
        lines += [tracking_line(p["carrier"], p["tracking"] or "") for p in in_note]
        text = join_lines(lines)
        if text:
            await self.add_note(oid, text, record)
        if slug:
            await self.call("PUT", f"{WC}/orders/{oid}", f"set order {oid} to {slug}",
                            json={"status": slug}, uid=f"{record.uid}.status")
        return deciding_status()

    async def add_note(self, oid: str, text: str, record: Record) -> None:
        notes = await self.call("GET", f"{WC}/orders/{oid}/notes", f"read notes of order {oid}",
                                params={"type": "customer"})
        for note in notes or []:
            if (isinstance(note, dict) and same_text(note.get("note"), text)
                    and made_by_this_record(note.get("date_created_gmt"), record)):
                return
        await self.call("POST", f"{WC}/orders/{oid}/notes", f"add a note to order {oid}",
                        json={"note": text, "customer_note": True}, uid=f"{record.uid}.note")

    async def add_trackings(self, oid: str, packages: list[PackagePart], record: Record) -> list[PackagePart]:
        """Add the packages' tracking to the extension; return those it cannot take (unknown carrier)."""
        path = f"{TRACKING}/orders/{oid}/shipment-trackings"
        existing = await self.call("GET", path, f"read shipment trackings of order {oid}")
        have = {str(t.get("tracking_number", "")).strip() for t in existing or [] if isinstance(t, dict)}
        providers = await self.providers(oid)
        leftover = []
        for package in packages:
            number = (package["tracking"] or "").strip()
            if number in have:
                continue
            provider = providers.get(loose_key(package["carrier"] or ""))
            if provider is None:
                leftover.append(package)
                continue
            body = {"tracking_provider": provider, "tracking_number": number,
                    "date_shipped": package["shipped_at"][:10]}
            await self.call("POST", path, f"add tracking {number} to order {oid}", json=body,
                            uid=f"{record.uid}.tracking.{number}")
            have.add(number)
        return leftover

    async def providers(self, oid: str) -> dict[str, str]:
        """The extension's carrier names, keyed loosely ('Fedex', 'FedEx', 'fed ex' alike).

        AST serves them only per order (neither plugin checks the order there); once a site
        answered 404 to the top-level route this adapter asks per order straight away.
        """
        what = "read the Shipment Tracking providers"
        groups = None
        if not self._per_order:
            try:
                groups = await self.call("GET", f"{TRACKING}/shipment-trackings/providers", what)
            except Rejected as err:
                if err.status != 404:
                    raise
                self._per_order = True
        if self._per_order:
            groups = await self.call("GET", f"{TRACKING}/orders/{oid}/shipment-trackings/providers", what)
        names: dict[str, str] = {}
        for group in (groups or {}).values() if isinstance(groups, dict) else []:
            if isinstance(group, dict):
                for name in group:
                    names.setdefault(loose_key(name), name)
        return names

    async def check(self) -> str:
        response = await self.send("GET", f"{WC}/orders", params={"per_page": "1"})
        self.judge(response, "list orders")
        orders = self.json(response, "list orders")
        if not isinstance(orders, list):
            raise Rejected("list orders: WooCommerce did not answer with a list; is the store URL right?")
        total = response.headers.get("x-wp-total", "?")
        seen = f"WooCommerce REST wc/v3: {plural(total, 'order')} visible"
        if self.uses_extension:
            listed = orders[0].get("id") if orders and isinstance(orders[0], dict) else None
            try:
                await self.providers(segment(listed if isinstance(listed, int) else 0))
            except Rejected as err:
                if err.status != 404:
                    raise
                raise Rejected("tracking=extension, but this site has no Shipment Tracking API (404); "
                               "install the extension or use --option tracking=note.", status=404) from None
            seen += "; Shipment Tracking extension present"
        return seen


ADAPTER = WooCommerceAdapter
