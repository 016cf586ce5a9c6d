"""The OSS web app: receives signed updates, shows orders to customers.

Routes: `POST /api/updates` (Standard Webhooks), `GET /` and `POST /lookup`
(the form), `GET /o/<token>` (signed link), `GET /api/orders/{number}`,
`GET /healthz` and `/static/oss.css|js`.

Writes (one fsync each, or per combined batch) run in the thread pool so they
never stall the event loop. On SQLite, reads run on the event loop itself: in
WAL mode a reader never waits for the writer, an order's page takes ~0.2 ms to
read and render, and skipping the thread hop doubles the lookups served
(bench/oss.py). On PostgreSQL a read is a round trip to the server, so reads
go to the thread pool too (`Oss.read`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from statusctl.carts.signing import verify
from statusctl.domain.carriers import carrier_name, tracking_url
from statusctl.domain.errors import ConfigError, DatabaseError
from statusctl.domain.webhooksecret import SignatureError, secret_bytes
from statusctl.oss import assets
from statusctl.oss.links import derive_link_key, make_token, parse_token
from statusctl.oss.pages import NOT_FOUND, Page
from statusctl.oss.ratelimit import RateLimiter, client_key
from statusctl.oss.store import OrderView, OssStore
from statusctl.oss.validate import Invalid, parse_update
from statusctl.storage.backends import Target

log = logging.getLogger("statusctl.oss")

MAX_BODY = 1 << 20  # an update for a 5000-item order fits easily
MAX_FORM = 4096
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # status links carry a token: never pass them on
    (
        b"content-security-policy",
        # The merchant's header and footer may load https images and styles and use inline
        # styles; scripts only from here, so an escaping slip still cannot run code.
        b"default-src 'self' https: data:; style-src 'self' https: 'unsafe-inline';"
        b" script-src 'self'; object-src 'none';"
        b" base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]
PRIVATE = {"cache-control": "no-store", "x-robots-tag": "noindex"}


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def order_json(view: OrderView) -> dict[str, Any]:
    """The JSON answer for one order: what the status page shows."""
    return {
        "number": view.number,
        "store": view.store,
        "label": view.label,
        "date": view.date,
        "updated_at": view.changed_at.isoformat(),
        "items": [
            {k: item[k] for k in ("sku", "name", "label", "quantity", "shipped", "cancelled")}
            for item in view.items
        ],
        "packages": [
            {
                "tracking": pkg.tracking,
                "carrier": carrier_name(pkg.carrier),
                "tracking_url": tracking_url(pkg.carrier, pkg.tracking),
                "shipped_at": pkg.shipped_at,
                "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in pkg.items],
            }
            for pkg in view.packages
        ],
        "history": [
            {
                "at": e.changed_at.isoformat(),
                "order_label": e.order_label if e.order_changed else None,
                "items": [{"sku": i["sku"], "name": i["name"], "label": i["label"]} for i in e.items],
                "packages": [
                    {"tracking": p["tracking"], "carrier": carrier_name(p["carrier"]),
                     "tracking_url": tracking_url(p["carrier"], p["tracking"])}
                    for p in e.packages
                ],
                "note": e.note,
            }
            for e in view.history
        ],
    }


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def check_secrets(secrets: Sequence[str]) -> list[str]:
    """The `whsec_…` secrets as a list; ConfigError (never showing one) unless each is at least 24 bytes."""
    secrets = list(secrets)
    if not secrets:
        raise ConfigError("The OSS needs at least one webhook secret (whsec_…) to verify updates.")
    for i, secret in enumerate(secrets, 1):
        try:
            if len(secret_bytes(secret)) < 24:
                raise ConfigError(f"OSS webhook secret #{i} is shorter than 24 bytes.")
        except SignatureError:
            raise ConfigError(f"OSS webhook secret #{i} is not whsec_ followed by base64.") from None
    return secrets


def _retry_after(wait: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(wait)))}


class Oss:
    """The OSS's endpoints over one store: what every route shares (secrets, link keys, rate limit, page)."""

    def __init__(self, store: OssStore, secrets: list[str], page: Page, link_keys: list[bytes],
                 limiter: RateLimiter, clock: Callable[[], float]) -> None:
        self.store = store
        self.secrets = secrets
        self.page = page
        self.link_keys = link_keys
        self.limiter = limiter
        self.clock = clock

    async def read(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`call(*args, **kwargs)` on the store, on the event loop (SQLite) or in the thread pool (PostgreSQL)."""
        if self.store.reads_inline:
            return call(*args, **kwargs)
        return await run_in_threadpool(call, *args, **kwargs)

    def too_many(self, request: Request) -> float:
        return self.limiter.take(client_key(request.client.host if request.client else None))

    def slow_down(self, wait: float) -> HTMLResponse:
        text = f"Too many lookups from your network. Please try again in {max(1, math.ceil(wait))} seconds."
        return HTMLResponse(self.page.message("Please wait", text), 429, _retry_after(wait))

    async def receive_update(self, request: Request) -> Response:
        body = await _body(request, MAX_BODY)
        if body is None:
            return JSONResponse({"error": f"the body is larger than {MAX_BODY} bytes"}, 413)
        try:
            webhook_id = verify(self.secrets, request.headers, body, now=self.clock())
        except SignatureError as exc:
            log.warning("refused an update from %s: %s", request.client.host if request.client else "?", exc)
            return JSONResponse({"error": str(exc)}, 401)
        if len(webhook_id) > 200:
            return JSONResponse({"error": "webhook-id is longer than 200 characters"}, 422)
        try:
            payload, changed_at = parse_update(body)
        except Invalid as exc:
            return JSONResponse({"error": str(exc)}, 422)
        try:
            outcome = await run_in_threadpool(self.store.apply, payload, changed_at, webhook_id, self.clock())
        except DatabaseError as exc:
            log.error("could not store update %s: %s", webhook_id, exc)
            return JSONResponse({"error": "the OSS cannot store updates right now"}, 503, _retry_after(30))
        return JSONResponse({"status": outcome, "id": webhook_id})

    async def lookup_form(self, request: Request) -> Response:
        return HTMLResponse(self.page.lookup())

    async def lookup(self, request: Request) -> Response:
        raw = await _body(request, MAX_FORM)
        fields = {k: v[-1] for k, v in parse_qs((raw or b"").decode("utf-8", "replace")).items()}
        number, postal = fields.get("number", "")[:100], fields.get("postal", "")[:40]
        wait = self.too_many(request)
        if wait:
            return self.slow_down(wait)
        view = await self.read(self.store.find, number, postal, store=fields.get("store") or None)
        if view is None:
            return HTMLResponse(self.page.lookup(message=NOT_FOUND, number=number), 404, PRIVATE)
        target = "/o/" + make_token(view.number, view.postal_key, self.link_keys[0], store=view.store)
        if fields.get("tz"):
            target += "?tz=" + quote(fields["tz"][:64], safe="")
        return RedirectResponse(target, 303, PRIVATE)

    async def by_link(self, request: Request) -> Response:
        token = parse_token(request.path_params["token"])
        view = await self.read(self.store.by_token, token, self.link_keys) if token else None
        if view is None:
            wait = self.too_many(request)  # only failed links count: a valid one cannot be guessed
            if wait:
                return self.slow_down(wait)
            text = "This order status link is not valid. Please look up your order by number and postal code."
            return HTMLResponse(self.page.message("Link not valid", text), 404, PRIVATE)
        return HTMLResponse(self.page.status(view, request.query_params.get("tz")), 200, PRIVATE)

    async def order_api(self, request: Request) -> Response:
        wait = self.too_many(request)
        if wait:
            return JSONResponse({"error": "too many lookups"}, 429, _retry_after(wait))
        number = request.path_params["number"][:100]
        postal = request.query_params.get("postal", "")[:40]
        view = await self.read(self.store.find, number, postal, store=request.query_params.get("store"))
        if view is None:
            return JSONResponse({"error": "no order with that number and postal code"}, 404, PRIVATE)
        return JSONResponse(order_json(view), 200, PRIVATE)

    async def healthz(self, request: Request) -> Response:
        # `stores test` signs this GET (empty body) to learn whether its secret is right;
        # load balancers send no signature and get the plain answer.
        signed = any(h in request.headers for h in ("webhook-id", "webhook-signature"))
        if signed:
            try:
                verify(self.secrets, request.headers, b"", now=self.clock())
            except SignatureError as exc:
                return JSONResponse({"error": str(exc)}, 401)
        try:
            await self.read(self.store.ping)
        except DatabaseError:
            return JSONResponse({"status": "error", "database": "unavailable"}, 503)
        return JSONResponse({"status": "ok", **({"signature": "ok"} if signed else {})})

    async def database_down(self, request: Request, exc: Exception) -> Response:
        path = "/o/…" if request.url.path.startswith("/o/") else request.url.path  # links are credentials
        log.error("OSS database error on %s: %s", path, exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "the order status database is unavailable"}, 503, _retry_after(30))
        text = "Order status is unavailable for a moment. Please try again in a minute."
        return HTMLResponse(self.page.message("Please try again", text), 503, _retry_after(30))


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client went (or was closed for sending its body too slowly): nobody reads this.
    return Response(status_code=400)


def _static(text: str, media_type: str) -> Callable[[Request], Any]:
    async def serve(request: Request) -> Response:
        return Response(text, 200, {"cache-control": "public, max-age=3600"}, media_type)

    return serve


def routes(oss: Oss) -> list[Route]:
    """Every URL the OSS answers (the module docstring lists them)."""
    return [
        Route("/", oss.lookup_form, methods=["GET"]),
        Route("/lookup", oss.lookup, methods=["POST"]),
        Route("/o/{token}", oss.by_link, methods=["GET"]),
        Route("/api/updates", oss.receive_update, methods=["POST"]),
        Route("/api/orders/{number:path}", oss.order_api, methods=["GET"]),
        Route("/healthz", oss.healthz, methods=["GET"]),
        Route("/static/oss.css", _static(assets.CSS, "text/css"), methods=["GET"]),
        Route("/static/oss.js", _static(assets.JS, "text/javascript"), methods=["GET"]),
    ]


def create_app(
    db: Target,
    secrets: Sequence[str],
    header_html: str = "",
    footer_html: str = "",
    link_key: bytes | None = None,
    *,
    clock: Callable[[], float] = time.time,
    lookup_limit: tuple[int, float] = (10, 60.0),
    title: str = "Order status",
) -> Starlette:
    """The OSS as an ASGI app over the database at `db` (a SQLite file path or a PostgreSQL URL).

    `secrets` are the `whsec_…` secrets updates may be signed with (several
    during key rotation). Signed links use `link_key` when given, else the key
    derived from the first secret; links made with any secret's key open.
    `lookup_limit` is (lookups, per seconds) per client address.
    """
    secrets = check_secrets(secrets)
    link_keys = ([link_key] if link_key else []) + [derive_link_key(s) for s in secrets]
    store = OssStore(db)
    oss = Oss(store, secrets, Page(header_html, footer_html, title), link_keys,
              RateLimiter(*lookup_limit, clock=clock), clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(routes=routes(oss), lifespan=lifespan,
                    exception_handlers={DatabaseError: oss.database_down, ClientDisconnect: _client_gone})
    app.add_middleware(_SecurityHeaders)
    app.state.store = store
    return app
