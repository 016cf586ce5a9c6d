"""Shopify GraphQL Admin API: the documents statusctl sends, and how one answer is judged.

Facts (shopify.dev, and the 2025-10 and 2026-07 Admin schemas introspected from a live shop,
against which the tests validate every document and its variables):

- `POST {shop}/admin/api/{version}/graphql.json`, header `X-Shopify-Access-Token`.
- Business errors come with HTTP 200: top-level `errors`, or a mutation's
  `userErrors` (`orderCancelUserErrors` for orderCancel).
- Rate limits are a leaky bucket of query cost. A throttled call answers
  `errors[].extensions.code == "THROTTLED"` with the bucket in
  `extensions.cost.throttleStatus` (`currentlyAvailable`, `restoreRate`) and the
  call's `requestedQueryCost`; we wait until the bucket holds that cost again.
  A 429 with `Retry-After` (seconds, Shopify writes e.g. `2.0`) is honoured too.
- Tokens: an admin-created custom app has a permanent token (secret `token`).
  Apps made in the Dev Dashboard (the only kind since 2026-01-01) get 24-hour
  tokens from the client credentials grant; with secrets `client_id` and
  `client_secret` instead of `token` the adapter fetches and renews them.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import httpx

from statusctl.carts.base import Adapter, Context, Rejected, TryLater, retry_after_seconds
from statusctl.carts.jsonbody import decode

DEFAULT_API_VERSION = "2026-07"  # the newest Admin schema the tests check every document against
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
# Below this many points left in the bucket, pause the store until it refills to it.
LOW_WATER = 50.0
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"})

SHOP = "query StatusctlShop { shop { name } }"

ORDER = """
query StatusctlOrder($id: ID!) {
  order(id: $id) {
    id
    cancelledAt
    tags
    fulfillments(first: 30) { id status trackingInfo(first: 5) { number } }
    fulfillmentOrders(first: 5) {
      pageInfo { hasNextPage }
      nodes {
        id
        status
        assignedLocation { name location { id } }
        lineItems(first: 50) {
          pageInfo { hasNextPage }
          nodes { id remainingQuantity sku lineItem { id } }
        }
      }
    }
  }
}
"""

# Only read on a resend: which line items the fulfillments with our tracking number already carry.
FULFILLED_LINES = """
query StatusctlFulfilledLines($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Fulfillment { id fulfillmentLineItems(first: 100) { nodes { quantity lineItem { id } } } }
  }
}
"""

CANCELLED = "query StatusctlCancelled($id: ID!) { order(id: $id) { id cancelledAt } }"

FULFIL = """
mutation StatusctlFulfil($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo(first: 5) { number } }
    userErrors { field message }
  }
}
"""

CANCEL = """
mutation StatusctlCancel($orderId: ID!, $refundMethod: OrderCancelRefundMethodInput, $restock: Boolean!,
                         $reason: OrderCancelReason!, $notifyCustomer: Boolean, $staffNote: String) {
  orderCancel(orderId: $orderId, refundMethod: $refundMethod, restock: $restock, reason: $reason,
              notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

TAGS_ADD = """
mutation StatusctlTags($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""

DOCUMENTS = {"SHOP": SHOP, "ORDER": ORDER, "FULFILLED_LINES": FULFILLED_LINES, "CANCELLED": CANCELLED,
             "FULFIL": FULFIL, "CANCEL": CANCEL, "TAGS_ADD": TAGS_ADD}


def gid(kind: str, value: str) -> str:
    """`gid://shopify/<kind>/<value>`, unless value already is a gid."""
    value = value.strip()
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def user_errors(errors: Any) -> str:
    """`field: message; …` of a userErrors list ('' when there are none)."""
    parts = []
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict):
            field = ".".join(str(f) for f in err.get("field") or [])
            parts.append(f"{field}: {err.get('message')}" if field else str(err.get("message")))
    return "; ".join(parts)


def _cost(body: dict[str, Any]) -> tuple[float, float, float] | None:
    """(requested cost, points available, restore rate per second) from `extensions.cost`."""
    cost = (body.get("extensions") or {}).get("cost")
    if not isinstance(cost, dict):
        return None
    status = cost.get("throttleStatus") or {}
    try:
        return (float(cost.get("requestedQueryCost") or 0), float(status["currentlyAvailable"]),
                float(status["restoreRate"]))
    except (KeyError, TypeError, ValueError):
        return None


def throttle_wait(body: dict[str, Any]) -> float:
    """Seconds until the bucket holds the throttled call's cost again (at least 1)."""
    cost = _cost(body)
    if cost is None or cost[2] <= 0:
        return 10.0
    requested, available, rate = cost
    return float(max(1, math.ceil((requested - available) / rate)))


def hold(ctx: Context, seconds: float) -> None:
    ctx.hold_until = max(ctx.hold_until, time.monotonic() + seconds)


class ShopifyBase(Adapter):
    """Sends one GraphQL document and returns its `data`, or raises TryLater / Rejected."""

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        super().__init__(client, ctx)
        self._token: str | None = None  # a client-credentials token, and when to renew it
        self._token_until = 0.0

    @property
    def api_version(self) -> str:
        version = self.ctx.store.option("api_version", DEFAULT_API_VERSION).strip()
        if not _VERSION.match(version):
            raise Rejected(f"Store option api_version={version!r} is not a Shopify API version like "
                           f"{DEFAULT_API_VERSION}.")
        return version

    def endpoint(self) -> str:
        return f"{self.ctx.store.url.rstrip('/')}/admin/api/{self.api_version}/graphql.json"

    async def access_token(self) -> str:
        token = self.ctx.secrets.get("token")
        if token:
            return token
        client_id, client_secret = self.ctx.require_secrets("client_id", "client_secret", instead="'token'")
        if self._token and time.monotonic() < self._token_until:
            return self._token
        response = await self.request(
            "POST", f"{self.ctx.store.url.rstrip('/')}/admin/oauth/access_token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            headers={"Accept": "application/json"},
        )
        self.judge(response, "Shopify token request")
        body = self._json(response, "Shopify token request")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise Rejected("Shopify token request: the answer holds no access_token.",
                           status=response.status_code, answer=self.ctx.excerpt(response.text))
        self.ctx.add_secret("access_token", token)
        lifetime = float(body.get("expires_in") or 86400)
        self._token, self._token_until = token, time.monotonic() + max(60.0, lifetime - 300.0)
        return token

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        body = decode(response.text)
        if not isinstance(body, dict):
            raise Rejected(f"{what}: the answer is not a JSON object.", status=response.status_code,
                           answer=self.ctx.excerpt(response.text))
        return body

    async def gql(self, document: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        """POST one document; its `data` when Shopify ran it without errors."""
        for attempt in (1, 2):
            response = await self.request(
                "POST", self.endpoint(), json={"query": document, "variables": variables},
                headers={"X-Shopify-Access-Token": await self.access_token(), "Accept": "application/json"},
            )
            # A client-credentials token may expire early (app reinstalled, secret rotated): renew once.
            if response.status_code == 401 and self._token and attempt == 1:
                self._token = None
                continue
            break
        if response.status_code == 429:
            wait = _retry_after(response)
            hold(self.ctx, wait)
            raise TryLater(f"{what}: HTTP 429, Shopify asks to wait {wait:.0f} s", status=429,
                           answer=self.ctx.excerpt(response.text), retry_after=wait)
        self.judge(response, what)
        body = self._json(response, what)
        answer = self.ctx.excerpt(response.text)
        cost = _cost(body)
        if cost is not None and cost[1] < LOW_WATER and cost[2] > 0:
            hold(self.ctx, (LOW_WATER - cost[1]) / cost[2])
        errors = body.get("errors")
        if errors:
            entries: list[Any] = errors if isinstance(errors, list) else [{"message": str(errors)}]
            found = [e for e in entries if isinstance(e, dict)]
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in found}
            text = "; ".join(str(e.get("message", "")) for e in found) or str(errors)
            if "THROTTLED" in codes:
                wait = throttle_wait(body)
                hold(self.ctx, wait)
                raise TryLater(f"{what}: Shopify throttled the call (query cost bucket empty); "
                               f"retry in {wait:.0f} s", status=200, answer=answer, retry_after=wait)
            if codes & TRANSIENT_CODES:
                raise TryLater(f"{what}: Shopify error: {self.ctx.scrub(text)}", status=200, answer=answer)
            raise Rejected(f"{what}: Shopify refused the call: {self.ctx.scrub(text)}", status=200, answer=answer)
        data = body.get("data")
        if not isinstance(data, dict):
            raise Rejected(f"{what}: the answer holds no data.", status=response.status_code, answer=answer)
        return data


def _retry_after(response: httpx.Response) -> float:
    return max(1.0, retry_after_seconds(response) or 2.0)
