"""A real HTTP server on 127.0.0.1 for cart tests, with fault injection.

A vendor fake is a `handle(request) -> Answer` callable holding the cart's
state; `FakeServer` serves it on an OS-assigned port and records every request.
Faults queued with `fail_next` answer instead of the vendor logic.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (slow answer / timeout)
    reset: bool = False  # close the connection mid-answer
    # Write the answer piece by piece as the iterator gives them (dripping, huge or endless
    # answers): the body in chunked encoding unless `headers` has a Content-Length, or with
    # `raw` the whole answer, status line and headers included.
    stream: Iterable[bytes] | None = None
    raw: bool = False

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


def json_answer(status: int, data: Any, **headers: str) -> Answer:
    return Answer(status, data, {k.replace("_", "-"): v for k, v in headers.items()})


Handler = Callable[[Request], Answer]


class FakeServer:
    """Serve `handler` on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.faults: deque[Answer] = deque()
        self.lock = threading.Lock()
        fake = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake.lock:
                    fake.requests.append(req)
                    fault = fake.faults.popleft() if fake.faults else None
                    answer = fault if fault is not None else None
                if answer is None:
                    try:
                        answer = fake.handler(req)
                    except Exception as exc:  # a bug in a fake shows as a 500 with the reason
                        answer = Answer(500, f"fake error: {exc!r}")
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.stream is not None:
                    self._stream(answer)
                    return
                data, headers = answer.encoded()
                if answer.reset:
                    self.send_response(answer.status)
                    self.send_header("Content-Length", str(len(data) + 100))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, answer: Answer) -> None:
                assert answer.stream is not None
                chunked = not answer.raw and "content-length" not in {k.lower() for k in answer.headers}
                self.close_connection = True
                try:
                    if not answer.raw:
                        self.send_response(answer.status)
                        for key, value in answer.headers.items():
                            self.send_header(key, value)
                        if chunked:
                            self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                    for piece in answer.stream:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client stopped reading and closed the connection
                    pass
                finally:
                    close = getattr(answer.stream, "close", None)
                    if close is not None:
                        close()  # a generator's `finally` learns that the answer ended

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        class _Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(self, answer: Answer, times: int = 1) -> None:
        """Answer the next `times` requests with `answer` instead of the vendor logic."""
        with self.lock:
            self.faults.extend([answer] * times)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port_refusing() -> str:
    """A loopback URL on which nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
