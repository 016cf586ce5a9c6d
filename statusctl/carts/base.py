"""The one small interface every cart adapter implements, and the shared HTTP rules.

An adapter turns one stack record
into one or more HTTP requests to its destination and judges the answers
(the payload's shape is `statusctl.core.record.Payload`):

- return normally            → OK: the controller deletes the record (return the
                               deciding answer's status to have it in the history);
- raise `TryLater`           → transient: retried per StackRetrySchedule (honouring `retry_after`);
- raise `Rejected`           → permanent: the record is marked failed with the reason.

Network errors and timeouts raised by httpx are transient; the controller
catches them, so adapters need not. Redirects are never followed.
"""

from __future__ import annotations

import base64
import contextvars
import email.utils
import functools
import html
import importlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import httpx

from statusctl.core.stores import Store

EXCERPT_CHARS = 300
LONGEST_HOLD_S = 30.0  # a rate-limit pause longer than this becomes a scheduled retry instead of a wait
USER_AGENT = "statusctl/0.1 (+order status updates)"


class DeliveryError(Exception):
    """Base of the two answers an adapter may give besides OK."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        answer: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.answer = answer
        self.retry_after = retry_after


class TryLater(DeliveryError):
    """Transient: the destination may accept the same record later."""


class Rejected(DeliveryError):
    """Permanent: sending the same record again will not help."""


@dataclass
class Record:
    """What an adapter is given for one attempt."""

    uid: str
    attempt: int
    payload: dict[str, Any]
    queued: float


@dataclass
class Context:
    """The destination store, its resolved secrets and the label mappings."""

    store: Store
    secrets: dict[str, str]
    mappings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # label.lower() -> cart -> value
    # Pause sends to this store until this monotonic time (rate limits); adapters may raise it.
    hold_until: float = 0.0

    def mapped(self, label: str) -> str | None:
        """The label's value for this store's cart type, or None when it has none."""
        return self.mappings.get(label.lower(), {}).get(self.store.cart)

    def require_mapping(self, label: str) -> str:
        value = self.mapped(label)
        if value is None:
            raise Rejected(
                f"Label {label!r} has no mapping for cart type {self.store.cart}; "
                f"add one with `statusctl labels add {label!r} --map {self.store.cart}=VALUE`."
            )
        return value

    def add_secret(self, name: str, value: str) -> None:
        """Remember a credential obtained at run time (a session token) so that `scrub` hides it."""
        self.secrets[f"_{name}"] = value

    def scrub(self, text: str) -> str:
        """Remove every secret from text that may be stored or shown, in every form a request carries it."""
        for form in secret_forms(tuple(self.secrets.values())):
            text = text.replace(form, "••••••")
        return text

    def excerpt(self, text: str) -> str:
        return self.scrub(" ".join(text.split()))[:EXCERPT_CHARS]

    @property
    def timeout(self) -> httpx.Timeout:
        total = self.store.float_option("timeout", 30.0)
        return httpx.Timeout(total, connect=self.store.float_option("connect_timeout", 5.0))


@functools.lru_cache(maxsize=64)
def secret_forms(values: tuple[str, ...]) -> tuple[str, ...]:
    """The texts secrets travel as, longest first: as they are, each of several space-separated
    ones (key rotation), URL- and form-encoded, JSON- and HTML-escaped, and the base64 of an
    HTTP Basic credential ("key:secret", "key:"). An answer that echoes the request (a proxy's
    error page, a PHP dump) shows them in those forms."""
    forms: set[str] = set()
    plain = [v for v in values if v]
    for value in plain:
        for part in {value, *value.split()}:
            forms.update((part, quote(part, safe=""), quote(part), quote_plus(part), html.escape(part),
                          json.dumps(part)[1:-1], json.dumps(part, ensure_ascii=False)[1:-1]))
    for user in plain:
        for password in ["", *plain]:
            if password != user:
                forms.add(base64.b64encode(f"{user}:{password}".encode()).decode().rstrip("="))
    return tuple(sorted((f for f in forms if len(f) >= 4), key=len, reverse=True))


class Adapter:
    """Base class: subclasses set `cart` and implement `deliver` (and `check` when they can)."""

    cart: ClassVar[str] = ""
    can_test: ClassVar[bool] = True

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        self.client = client
        self.ctx = ctx

    async def deliver(self, record: Record) -> int | None:
        """Send one record; return on OK (the deciding answer's HTTP status, when there is one), raise TryLater or Rejected otherwise."""
        raise NotImplementedError  # abstract

    async def check(self) -> str:
        """A harmless read that proves reachability and credentials; returns what was seen."""
        raise Rejected(f"Cart type {self.cart} has no harmless read to test with.")

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request with the store's timeouts, no redirects, and read the whole answer."""
        kwargs.setdefault("timeout", self.ctx.timeout)
        response = await self.client.request(method, url, follow_redirects=False, **kwargs)
        _LAST_STATUS.set(response.status_code)
        note_rate_limit(self.ctx, response)
        return response

    def judge(self, response: httpx.Response, what: str = "") -> None:
        """The common HTTP rules: 2xx OK, 3xx/4xx permanent, 408/425/429/5xx transient."""
        judge_status(self.ctx, response, what)


TRANSIENT_STATUSES = frozenset({408, 425, 429})

# The status of the last answer a request got, per task: the controller sends each record in
# its own task, so a delivery of several calls reads its own last (deciding) answer.
_LAST_STATUS: contextvars.ContextVar[int | None] = contextvars.ContextVar("statusctl_last_status", default=None)


def deciding_status() -> int | None:
    """The HTTP status of the last answer in this delivery (all were OK if it got this far)."""
    return _LAST_STATUS.get()


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), or BigCommerce's reset header."""
    value = response.headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            seconds = float(value)  # delta-seconds; some carts send "2.0"
        except ValueError:
            seconds = None
        if seconds is not None:
            return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - (now if now is not None else time.time()))
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms")
    if reset_ms and reset_ms.strip().isdigit():
        return int(reset_ms) / 1000.0
    return None


def note_rate_limit(ctx: Context, response: httpx.Response) -> None:
    """Hold the store when it says no requests are left (BigCommerce) or sent 429."""
    left = response.headers.get("x-rate-limit-requests-left")
    wait = None
    if left is not None and left.strip() == "0" or response.status_code == 429:
        wait = retry_after_seconds(response)
    if wait:
        ctx.hold_until = max(ctx.hold_until, time.monotonic() + wait)


def judge_status(ctx: Context, response: httpx.Response, what: str = "") -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    prefix = f"{what}: " if what else ""
    answer = ctx.excerpt(response.text)
    if 300 <= status < 400:
        target = ctx.scrub(response.headers.get("location", "?"))
        raise Rejected(f"{prefix}HTTP {status} redirect to {target} (not followed)", status=status, answer=answer)
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TryLater(
            f"{prefix}HTTP {status} {response.reason_phrase}".rstrip(),
            status=status,
            answer=answer,
            retry_after=retry_after_seconds(response),
        )
    if status == 410:
        raise Rejected(f"{prefix}HTTP 410: the endpoint is gone", status=status, answer=answer)
    if status in (401, 403):
        raise Rejected(f"{prefix}HTTP {status}: credentials refused", status=status, answer=answer)
    raise Rejected(f"{prefix}HTTP {status} {response.reason_phrase}".rstrip(), status=status, answer=answer)


def adapter_class(cart: str) -> type[Adapter]:
    """The adapter of a cart type, imported on first use."""
    module = importlib.import_module(f"statusctl.carts.{cart}")
    cls: object = module.ADAPTER
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"statusctl.carts.{cart}.ADAPTER is not an Adapter")
    return cls


def make_client(transport: httpx.AsyncBaseTransport | None = None, *, connections: int = 64) -> httpx.AsyncClient:
    """The HTTP client every send uses: TLS verified, no redirects, a bounded pool."""
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(30.0, connect=5.0),
    )
