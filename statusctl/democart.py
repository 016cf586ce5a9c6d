"""A small cart that speaks the Stone Edge (seti) protocol on loopback, for `statusctl demo` and tests.

It keeps, per order number, the status last set and the tracking numbers it
was given (a set: a resend adds nothing), and lists every authenticated update
in `received`. Status names are matched case-insensitively, as real scripts do,
against the built-in labels plus any extra names given; an unknown name is
refused with `update=False`, like a script that cannot find the status.

    with DemoCart() as cart:
        ...  # a seti store with url=cart.url, user=cart.user, password=cart.password
        cart.received  # [{'order': '1001', 'status': 'Order Shipped', ...}]

`DemoCart.answer(path, method, form)` is the whole protocol logic without HTTP,
so a test server can serve the same cart.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from statusctl.domain.labels import BUILTIN_LABELS

PATH = "/seti.php"
VERSION = "1.000"
AUTH_FAILED = "Invalid username, password, or store code."


@dataclass
class DemoOrder:
    status: str = ""
    tracking: list[str] = field(default_factory=list)  # in arrival order, no duplicates
    items: dict[str, str] = field(default_factory=dict)  # item number -> status (XML form)


def _text(node: ET.Element | None, tag: str) -> str:
    child = node.find(tag) if node is not None else None
    return (child.text or "").strip() if child is not None else ""


class DemoCart:
    """An in-process seti cart script on 127.0.0.1:<port chosen by the OS>."""

    def __init__(
        self,
        user: str = "demo",
        password: str | None = None,
        code: str = "",
        statuses: Iterable[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.code = code
        self.statuses = {name.lower() for name, _ in BUILTIN_LABELS} | {s.lower() for s in statuses}
        self.orders: dict[str, DemoOrder] = {}
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.host = host
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- the protocol ----------------------------------------------------------------------------

    def answer(self, path: str, method: str, form: dict[str, str]) -> tuple[int, str]:
        """The HTTP status and text answer of the script for one request."""
        if path != PATH:
            return 404, "Not Found"
        if method != "POST":
            return 405, "Method Not Allowed"
        function = form.get("setifunction", "").lower()
        if function == "sendversion":
            return 200, f"SETIResponse: version={VERSION}"
        authorised = (
            secrets.compare_digest(form.get("setiuser", ""), self.user)
            and secrets.compare_digest(form.get("password", ""), self.password)
            and (not self.code or form.get("code", "") == self.code)
        )
        if function == "ordercount":
            if not authorised:
                return 200, f"SETIError: {AUTH_FAILED}"
            with self.lock:
                return 200, f"SETIResponse: ordercount={len(self.orders)}"
        if function == "updatestatus":
            if not authorised:
                return 200, f"SETIResponse: update=False;Notes={AUTH_FAILED}"
            return 200, self._update(form)
        if not function:
            return 200, "SETIError: Expecting a setifunction parameter."
        return 200, f"SETIError: Integration has no support for function: {function}"

    def _update(self, form: dict[str, str]) -> str:
        if form.get("update"):
            kind = "xml"
            try:
                parsed = self._parse_xml(form["update"])
            except ET.ParseError as exc:
                return f"SETIResponse: update=False;Notes=Unreadable XML: {exc}"
        else:
            kind = "delimited"
            parsed = self._parse_delimited(form)
        number, status, tracking, items = parsed
        if not number:
            return "SETIResponse: update=False;Notes=No order number given"
        for name in [status, *items.values()]:
            if name and name.lower() not in self.statuses:
                return f"SETIResponse: update=False;Notes=Unknown status {name!r}"
        with self.lock:
            order = self.orders.setdefault(number, DemoOrder())
            if status:
                order.status = status
            order.items.update({k: v for k, v in items.items() if v})
            for num in tracking:
                if num not in order.tracking:
                    order.tracking.append(num)
            self.received.append({
                "order": number,
                "status": status,
                "tracking": tracking,
                "items": items,
                "form": kind,
                "time": time.time(),
            })
        return "SETIResponse: update=OK;Notes="

    @staticmethod
    def _parse_delimited(form: dict[str, str]) -> tuple[str, str, list[str], dict[str, str]]:
        try:
            count = int(form.get("trackcount") or 0)
        except ValueError:
            count = 0
        names = ["tracknum"] if count == 1 else [f"tracknum{n}" for n in range(1, count + 1)]
        tracking = [form[n].strip() for n in names if form.get(n, "").strip()]
        return form.get("ordernumber", "").strip(), form.get("orderstatus", "").strip(), tracking, {}

    @staticmethod
    def _parse_xml(document: str) -> tuple[str, str, list[str], dict[str, str]]:
        root = ET.fromstring(document)
        order = root.find("Order")
        tracking: list[str] = []
        items: dict[str, str] = {}
        if order is not None:
            for pkg in order.findall("Packages/Package"):
                num = _text(pkg, "TrackingID") or _text(pkg, "TrackNum")
                if num:
                    tracking.append(num)
            for item in order.findall("Items/Item"):
                items[_text(item, "ItemNumber")] = _text(item, "Status")
        return _text(order, "OrderNumber"), _text(order, "Status"), tracking, items

    def tracking_of(self, number: str) -> list[str]:
        with self.lock:
            order = self.orders.get(number)
            return list(order.tracking) if order else []

    # -- the HTTP server ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the demo cart is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> DemoCart:
        cart = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                path, _, query = self.path.partition("?")
                form = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
                form.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
                status, text = cart.answer(path, self.command, form)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server((self.host, 0), Handler)
        # A short poll interval: stop() waits for the serve loop to notice, 0.5 s by default.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="democart", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DemoCart:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
