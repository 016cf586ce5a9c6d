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
import email.utils
import functools
import html
import importlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import httpx

from statusctl.core.stores import MASK, Store

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
    def timeout(self) -> httpx.Timeout:
        total = self.store.float_option("timeout", 30.0)
        return httpx.Timeout(total, connect=self.store.float_option("connect_timeout", 5.0))


def _json(text: str, *, ascii_only: bool = True, slash: bool = False, hex_quotes: bool = False) -> str:
    out = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
    if slash:
        out = out.replace("/", "\\/")
    if hex_quotes:  # PHP's JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT
        out = out.replace('\\"', "\\u0022")
        for ch in "<>&'":
            out = out.replace(ch, f"\\u{ord(ch):04x}")
    return out


def _html(text: str, apostrophe: str | None) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return out if apostrophe is None else out.replace("'", apostrophe)


# How a secret may travel or be echoed back: one line per encoding. Each is also applied on top
# of each other (a URL-encoded password inside a JSON-escaped page), and matched without regard
# to case (%2f and %2F, \u003c and \u003C).
ENCODINGS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("as it is", lambda s: s),
    ("whitespace collapsed", lambda s: " ".join(s.split())),
    ("URL path", quote),
    ("URL component (PHP rawurlencode)", lambda s: quote(s, safe="")),
    ("form (urlencode)", quote_plus),
    ("PHP urlencode", lambda s: quote_plus(s, safe="").replace("~", "%7E")),
    ("JSON", _json),
    ("JSON, UTF-8 kept", lambda s: _json(s, ascii_only=False)),
    ("PHP json_encode", lambda s: _json(s, slash=True)),
    ("PHP json_encode, JSON_UNESCAPED_UNICODE", lambda s: _json(s, ascii_only=False, slash=True)),
    ("PHP json_encode, JSON_HEX_*", lambda s: _json(s, slash=True, hex_quotes=True)),
    ("HTML (Python html.escape)", html.escape),
    ("PHP htmlspecialchars, ENT_QUOTES", lambda s: _html(s, "&#039;")),
    ("htmlspecialchars, ENT_HTML5 / XML", lambda s: _html(s, "&apos;")),
    ("htmlspecialchars, ENT_COMPAT", lambda s: _html(s, None)),
    ("HTML decimal apostrophe", lambda s: _html(s, "&#39;")),
    ("PHP addslashes", lambda s: s.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')),
    ("base64", lambda s: base64.b64encode(s.encode()).decode().rstrip("=")),
)
FRAGMENT = 8  # any piece this long of a secret (in any of its forms) is masked
SHORTEST = 4  # a secret shorter than FRAGMENT is masked whole; one shorter than this is not a secret

@dataclass(frozen=True)
class _Scrubber:
    pieces: frozenset[str]  # every FRAGMENT-long piece of every form, lower case
    whole: tuple[str, ...]  # forms shorter than FRAGMENT, lower case, longest first


def secret_forms(values: tuple[str, ...]) -> set[str]:
    """The texts secrets travel as: each of several space-separated ones (key rotation) too, in every
    encoding and every encoding of an encoding, and the base64 of an HTTP Basic credential
    ("key:secret", "key:"). An answer that echoes the request (a proxy's error page, a PHP dump)
    shows them in those forms."""
    plain = [v for v in values if v]
    parts = {part for value in plain for part in {value, *value.split()} if len(part) >= FRAGMENT or part == value}
    once = {encode(part) for part in parts for _, encode in ENCODINGS}
    forms = {outer(inner) for inner in once for _, outer in ENCODINGS}
    for user in plain:
        for password in ["", *plain]:
            if password != user:
                forms.add(base64.b64encode(f"{user}:{password}".encode()).decode().rstrip("="))
    return {f for f in forms if len(f) >= SHORTEST}


@functools.lru_cache(maxsize=64)
def _scrubber(values: tuple[str, ...]) -> _Scrubber:
    forms = {f.lower() for f in secret_forms(values)}
    pieces = frozenset(f[i : i + FRAGMENT] for f in forms if len(f) >= FRAGMENT for i in range(len(f) - FRAGMENT + 1))
    whole = tuple(sorted((f for f in forms if len(f) < FRAGMENT), key=len, reverse=True))
    return _Scrubber(pieces, whole)


def scrub(text: str, values: tuple[str, ...]) -> str:
    """`text` with every run of characters that is a piece of a secret's form replaced by MASK."""
    s = _scrubber(values)
    if not text or not (s.pieces or s.whole):
        return text
    folded = text.lower()
    if len(folded) != len(text):  # a character whose lower case is longer: compare as it is
        folded = text
    hidden = bytearray(len(text))
    pieces = s.pieces
    for i in range(len(text) - FRAGMENT + 1):
        if folded[i : i + FRAGMENT] in pieces:
            hidden[i : i + FRAGMENT] = b"\x01" * FRAGMENT
    for form in s.whole:
        start = folded.find(form)
        while start >= 0:
            hidden[start : start + len(form)] = b"\x01" * len(form)
            start = folded.find(form, start + 1)
    if not any(hidden):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        j = hidden.find(b"\x01", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j] + MASK)
        end = hidden.find(b"\x00", j)
        i = len(text) if end < 0 else end
    return "".join(out)


def excerpt(text: str, values: tuple[str, ...]) -> str:
    """The start of `text` as the history keeps it: whitespace collapsed, scrubbed, EXCERPT_CHARS long.

    Only the start is scrubbed (an answer may be megabytes long), but enough of it that a
    piece of a secret cut at the end of what was scrubbed lies past what is kept.
    """
    size = EXCERPT_CHARS * 2
    while True:
        shown = scrub(" ".join(text[:size].split()), values)
        if len(shown) >= EXCERPT_CHARS + FRAGMENT or size >= len(text):
            return shown[:EXCERPT_CHARS]
        size *= 4


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
        note_rate_limit(self.ctx, response)
        return response

    def judge(self, response: httpx.Response, what: str = "") -> None:
        """The common HTTP rules: 2xx OK, 3xx/4xx permanent, 408/425/429/5xx transient."""
        judge_status(self.ctx, response, what)


TRANSIENT_STATUSES = frozenset({408, 425, 429})


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
