"""What the JSON REST adapters (woocommerce, bigcommerce, magento2) share.

`RestAdapter` adds to `Adapter`: a base URL and auth headers per cart, one
`call()` that sends, judges (with the vendor's own error text in the reason)
and decodes JSON, a pause while the store's rate limit is spent, and the
`Idempotency-Key` header on writes. The functions below read the record
payload the same way for every cart: the order id to put in URLs, the label
changes, the lines of a customer note, and whether something already in the
cart is the effect of an earlier attempt of this record.
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast
from urllib.parse import quote

import httpx

from statusctl.carts.base import (
    LONGEST_HOLD_S,
    Adapter,
    DeliveryError,
    Record,
    Rejected,
    TryLater,
    judge_status,
)
from statusctl.carts.jsonbody import decode
from statusctl.domain.carriers import loose_key as loose_key  # the REST adapters' name for it
from statusctl.domain.record import ItemPart, PackageItem, PackagePart, Payload
from statusctl.domain.record import (
    new_order_label as new_order_label,  # the rule lives with the payload
)

DETAIL_CHARS = 200
# Something in the cart counts as an earlier attempt's effect when it was made at most this
# long before the record was queued: it absorbs clock skew between us and the cart, while an
# identical note sent for another record days ago is not mistaken for this one.
SKEW_S = 3600.0
# Pauses (rate limits) up to this long are waited out in the middle of a record, as the
# controller does before one; longer ones end the attempt with a TryLater.
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RestAdapter(Adapter):
    """An adapter that speaks JSON over HTTP to one base URL."""

    def base_url(self) -> str:
        """The URL every `call()` path is appended to."""
        return self.ctx.store.url.rstrip("/")

    def auth(self) -> dict[str, Any]:
        """Extra keyword arguments for `request()` that authenticate (headers or auth)."""
        return {}

    def error_detail(self, body: Any) -> str | None:
        """The vendor's error message in a decoded error body, when it has its shape."""
        return None

    def secret(self, key: str) -> str:
        return self.ctx.require_secrets(key)[0]

    def judge(self, response: httpx.Response, what: str = "") -> None:
        """The common HTTP rules, with the vendor's own error message added to the reason."""
        try:
            judge_status(self.ctx, response, what)
        except DeliveryError as err:
            detail = self.error_detail(decode(response.text))
            if not detail:
                raise
            detail = self.ctx.excerpt(detail)[:DETAIL_CHARS]
            raise type(err)(
                f"{err.reason}: {detail}", status=err.status, answer=err.answer, retry_after=err.retry_after
            ) from None

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        uid: str | None = None,
    ) -> httpx.Response:
        """Send one request (not judged), after any pause the store asked for.

        `uid` is the write's Idempotency-Key: the record's uid, suffixed per write when one
        record makes several (each shipment its own key, the same on every attempt).
        """
        wait = self.ctx.hold_until - time.monotonic()
        if wait > LONGEST_HOLD_S:
            raise TryLater(
                f"{self.cart} asked to pause for {wait:.1f} s (rate limit); nothing sent", retry_after=wait
            )
        if wait > 0:  # a short pause mid-record costs less than a retry that reads everything again
            await asyncio.sleep(wait)
        kwargs = self.auth()
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if json is not None:
            kwargs["json"] = json
        if method in WRITES and uid:
            headers["Idempotency-Key"] = uid
        return await self.request(method, self.base_url() + path, headers=headers, params=params, **kwargs)

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        uid: str | None = None,
    ) -> Any:
        """Send, judge, and return the decoded JSON answer (None for an empty 2xx answer)."""
        response = await self.send(method, path, json=json, params=params, uid=uid)
        self.judge(response, what)
        return self.json(response, what)

    def json(self, response: httpx.Response, what: str) -> Any:
        """The JSON of a 2xx answer; anything else there (an HTML page, say) is a wrong URL."""
        if response.status_code == 204 or not response.content.strip():
            return None
        body = decode(response.text)
        if body is None:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise Rejected(
                f"{what}: expected JSON from {self.cart} but got {kind}; is the store URL right?",
                status=response.status_code,
                answer=self.ctx.excerpt(response.text),
            )
        return body


def payload_of(record: Record) -> Payload:
    return cast(Payload, record.payload)


def order_id(payload: Payload) -> str:
    """The order id for URLs: the cart's own id when the import gave one, else the order number."""
    order = payload["order"]
    return order["cart_order_id"] or order["number"]


def segment(value: str | int) -> str:
    """A value made safe as one URL path segment."""
    return quote(str(value), safe="")


def changed_items(payload: Payload) -> list[ItemPart]:
    """The items whose label this record changed to a label (not cleared)."""
    return [item for item in payload["items"] if item["changed"] and item["label"]]


def item_line(item: ItemPart) -> str:
    """How an item's new label reads in a customer note."""
    return f"{item['name'] or item['sku']} ({item['sku']}): {item['label']}"


def tracking_line(carrier: str | None, tracking: str) -> str:
    return f"Tracking{f' ({carrier})' if carrier else ''}: {tracking}"


def join_lines(lines: list[str | None]) -> str:
    return "\n".join(line.strip() for line in lines if line and line.strip())


def same_text(a: str | None, b: str | None) -> bool:
    """Whether two notes say the same, ignoring HTML entities, tags and whitespace the cart adds."""
    return _norm(a or "") == _norm(b or "")


def _norm(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split()).casefold()


def parse_time(text: Any) -> float | None:
    """Unix time of a cart's timestamp: ISO 8601 (UTC when no zone), 'YYYY-MM-DD HH:MM:SS' or RFC 2822."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def made_by_this_record(created: Any, record: Record) -> bool:
    """Whether something created at `created` (a cart timestamp) may be this record's own earlier effect.

    Unknown times count as ours: a duplicate e-mail to a customer is worse than a skipped one.
    """
    when = parse_time(created)
    return when is None or when >= record.queued - SKEW_S


@dataclass
class NewShipment:
    """A package of the record that the cart does not hold yet, ready to become a shipment."""

    index: int  # the package's place in the record (its write's Idempotency-Key suffix)
    package: PackagePart
    tracking: str
    lines: list[tuple[int, int]]  # (the cart's order line id, quantity)
    comment: str | None  # the record's note, with the record's first package


def new_shipments(packages: list[PackagePart], note: str | None, numbers: set[str],
                  earlier: set[tuple[tuple[str, int], ...]],
                  line_of: Callable[[PackageItem], int]) -> list[NewShipment]:
    """The packages with something to ship that the cart has no shipment of yet, in order.

    A package is there already when a shipment holds its tracking number (`numbers`) or,
    untracked, when an untracked shipment this record may have made holds the same lines
    (`earlier`, as `items_key`s). `line_of` gives the cart's line id of a package item.
    """
    out = []
    for n, package in enumerate(packages):
        wanted = [i for i in package["items"] if i["quantity"] > 0]
        if not wanted:
            continue
        # The note rides with the record's first package, whether shipped now or by an earlier attempt.
        comment, note = note, None
        tracking = (package["tracking"] or "").strip()
        if tracking and tracking in numbers:
            continue
        lines = [(line_of(i), i["quantity"]) for i in wanted]
        if not tracking and items_key([(str(k), q) for k, q in lines]) in earlier:
            continue
        out.append(NewShipment(n, package, tracking, lines, comment))
    return out


def items_key(pairs: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """A comparable form of a shipment's (line id, quantity) pairs."""
    merged: dict[str, int] = {}
    for line, qty in pairs:
        merged[line] = merged.get(line, 0) + qty
    return tuple(sorted(merged.items()))
