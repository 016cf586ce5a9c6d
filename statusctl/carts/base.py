"""The one small interface every cart adapter implements, and the shared HTTP rules.

An adapter turns one stack record
into one or more HTTP requests to its destination and judges the answers
(the payload's shape is `statusctl.domain.record.Payload`):

- return normally            → OK: the controller deletes the record (return the
                               deciding answer's status to have it in the history);
- raise `TryLater`           → transient: retried per StackRetrySchedule (honouring `retry_after`);
- raise `Rejected`           → permanent: the record is marked failed with the reason.

Network errors and timeouts raised by httpx are transient; the controller
catches them, so adapters need not. Redirects are never followed. `request()`
keeps the store's `timeout` as the deadline of the whole attempt and reads at
most MAX_ANSWER_BYTES of an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import importlib
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from statusctl.carts.scrub import excerpt, scrub
from statusctl.domain.stores import Store

# The most of an answer that is read. The largest real answers (a Magento or WooCommerce order
# of some hundred lines, a BigCommerce page of 50 shipments, all the notes of an order) are a few
# hundred KB; Shopify's are bounded by the `first:` of each GraphQL query.
MAX_ANSWER_BYTES = 4 * 2**20
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
    attempt: int  # attempts that ended with an outcome so far, plus this one
    payload: dict[str, Any]
    queued: float
    claims: int = 0  # times the record was claimed, this one included (sends cut short by a crash count here)

    @property
    def resend(self) -> bool:
        """Whether an earlier send of this record may have reached the destination.

        A send cut short by a crash ends with no outcome, so it is not an attempt,
        but the destination may have acted on it all the same.
        """
        return self.attempt > 1 or self.claims > 1


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

    def require_secrets(self, *keys: str, instead: str = "") -> list[str]:
        """The values of these secrets, in order; Rejected naming those the store lacks
        (`instead` names what may stand in for them, e.g. another secret)."""
        missing = [key for key in keys if not (self.secrets.get(key) or "").strip()]
        if missing:
            names = " and ".join(repr(key) for key in missing)
            raise Rejected(f"Store {self.store.name!r} has no secret {names}{f' (or {instead})' if instead else ''}; "
                           f"add it with --secret-env {missing[0]}=VAR.")
        return [self.secrets[key] for key in keys]

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
        """Mask every secret in text that may be stored or shown, in every form a request or an echo carries it."""
        return scrub(text, tuple(self.secrets.values()))

    def excerpt(self, text: str) -> str:
        """The start of an answer, whitespace collapsed and scrubbed, at most EXCERPT_CHARS long."""
        return excerpt(text, tuple(self.secrets.values()))

    @property
    def timeout_seconds(self) -> float:
        """The store's `timeout`: the deadline of a whole attempt."""
        return self.store.float_option("timeout", 30.0)

    @property
    def timeout(self) -> httpx.Timeout:
        """httpx's own limits per step (the attempt's deadline is kept by `Adapter.request`)."""
        return httpx.Timeout(self.timeout_seconds, connect=self.store.float_option("connect_timeout", 5.0))


class _Budget:
    """The time an attempt may still spend talking to its cart."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds


_ATTEMPT: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("statusctl_attempt", default=None)


@contextlib.contextmanager
def attempt(ctx: Context) -> Iterator[None]:
    """One attempt (a record's delivery, a store's test): the store's `timeout` bounds all its requests together.

    What counts is the time spent in requests, from connecting to the last byte of each
    answer; a pause the cart asked for between two requests (a rate limit) does not.
    Without an attempt around it, each request has the whole timeout to itself.
    """
    token = _ATTEMPT.set(_Budget(ctx.timeout_seconds))
    try:
        yield
    finally:
        _ATTEMPT.reset(token)


_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})  # of the body as sent


async def _read_bounded(streamed: httpx.Response) -> tuple[httpx.Response, bool]:
    """The answer with at most MAX_ANSWER_BYTES of its decoded body read, and whether it was cut.

    The body is decoded here, a bounded piece at a time: a gzip answer that inflates a
    thousandfold (a "zip bomb") must not be inflated whole to find that it is too long.
    """
    encoding = streamed.headers.get("content-encoding", "").strip().lower()
    decode = _Inflater(encoding, streamed.request) if encoding in ("gzip", "deflate") else (lambda raw, most: raw)
    body = bytearray()
    cut = False
    async for raw in streamed.aiter_raw():
        body += decode(raw, MAX_ANSWER_BYTES + 1 - len(body))
        if len(body) > MAX_ANSWER_BYTES:
            del body[MAX_ANSWER_BYTES:]
            cut = True
            break
    headers = [(k, v) for k, v in streamed.headers.multi_items() if k not in _BODY_HEADERS]
    kept = {k: v for k, v in streamed.extensions.items() if k in ("http_version", "reason_phrase")}
    response = httpx.Response(streamed.status_code, headers=headers, content=bytes(body),
                              request=streamed.request, extensions=kept)
    return response, cut


class _Inflater:
    """A gzip or deflate body inflated at most `most` bytes per call."""

    def __init__(self, encoding: str, request: httpx.Request) -> None:
        self.encoding, self.request = encoding, request
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self.started = False

    def __call__(self, raw: bytes, most: int) -> bytes:
        try:
            try:
                out = self.inflate.decompress(raw, most)
            except zlib.error:
                if self.encoding == "gzip" or self.started:
                    raise
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without its zlib wrapper, as some send it
                out = self.inflate.decompress(raw, most)
        except zlib.error as exc:
            raise httpx.DecodingError(f"the answer is not valid {self.encoding}: {exc}", request=self.request) from None
        self.started = True
        return out


class Adapter:
    """Base class: subclasses set `cart` and implement `deliver` (and `check` when they can)."""

    cart: ClassVar[str] = ""

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        self.client = client
        self.ctx = ctx

    async def deliver(self, record: Record) -> int | None:
        """Send one record; return on OK (the deciding answer's HTTP status, when there is one), raise TryLater or Rejected otherwise."""
        raise NotImplementedError  # abstract

    async def check(self) -> str:
        """A harmless read that proves reachability and credentials; returns what was seen."""
        raise Rejected(f"Cart type {self.cart} has no harmless read to test with.")

    async def request(self, method: str, url: str, *, body_needed: bool = True, **kwargs: Any) -> httpx.Response:
        """Send a request with no redirects, within the attempt's time, and read at most MAX_ANSWER_BYTES.

        The store's `timeout` bounds every request of the attempt together (see `attempt`),
        from connecting to the answer's last byte; past it this raises TryLater. A longer
        answer is cut: it is judged by its status, but a 2xx that the adapter must read
        (`body_needed`, all but the webhook's) is a failure, since it cannot be understood.
        """
        budget = _ATTEMPT.get() or _Budget(self.ctx.timeout_seconds)
        if budget.left <= 0:
            raise TryLater(self._late(method, url))
        kwargs.setdefault("timeout", self.ctx.timeout)
        auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)
        started = time.monotonic()
        async def fetch() -> tuple[httpx.Response, bool]:
            streamed = await self.client.send(self.client.build_request(method, url, **kwargs), auth=auth,
                                              follow_redirects=False, stream=True)
            try:
                return await _read_bounded(streamed)
            finally:
                await streamed.aclose()

        try:
            # wait_for, not asyncio.timeout: statusctl runs on Python 3.10, which lacks the latter.
            response, cut = await asyncio.wait_for(fetch(), timeout=max(budget.left, 0.001))
        except httpx.ConnectTimeout:
            raise  # its own limit (connect_timeout), named by the controller
        except (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException):  # httpx's read limit is the deadline too
            raise TryLater(self._late(method, url)) from None
        finally:
            budget.left -= time.monotonic() - started
        _LAST_STATUS.set(response.status_code)
        note_rate_limit(self.ctx, response)
        if cut and body_needed and 200 <= response.status_code < 300:
            raise Rejected(
                f"{method} {self.ctx.scrub(httpx.URL(url).path)}: HTTP {response.status_code} with an answer of more "
                f"than {MAX_ANSWER_BYTES // 2**20} MiB, more than statusctl reads, so it cannot be judged",
                status=response.status_code,
                answer=self.ctx.excerpt(response.text),
            )
        return response

    def _late(self, method: str, url: str) -> str:
        return (f"{method} {self.ctx.scrub(httpx.URL(url).path)}: timed out: no complete answer within the store's "
                f"timeout of {self.ctx.timeout_seconds:g} s (for the whole attempt: connecting, sending and every answer)")

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
