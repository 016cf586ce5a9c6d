"""Slow and idle connections against the OSS under uvicorn with its guard (statusctl.oss.guard).

Short deadlines and small caps so each rule shows in well under a second or two.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from statusctl.oss.app import create_app
from statusctl.oss.guard import Limits
from statusctl.oss.server import Background

from .conftest import SECRET
from .process import needs_loopback_range

pytestmark = needs_loopback_range

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextmanager
def oss(tmp_path: Path, **limits: float) -> Iterator[Background]:
    with Background(create_app(tmp_path / "oss.db", [SECRET]), Limits(**limits)) as server:  # type: ignore[arg-type]
        yield server


def connect(server: Background, source: str = "127.0.0.1", first: bytes = b"") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    if first:
        sock.sendall(first)
    return sock


def closed_after(sock: socket.socket, limit: float, *, drip: bytes = b"") -> float | None:
    """Seconds until the server closes `sock` (sending `drip` every 0.1 s meanwhile), None if it stays open."""
    started = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - started < limit:
        try:
            while sock.recv(65536):  # an answer, if any, then the end
                pass
            return time.monotonic() - started
        except TimeoutError:
            if drip:
                try:
                    sock.sendall(drip)
                except OSError:
                    return time.monotonic() - started
        except OSError:  # reset
            return time.monotonic() - started
    return None


def answered(server: Background, source: str = "127.0.0.2") -> bytes:
    with connect(server, source, REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")) as sock:
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize(
    ("first", "drip"),
    [
        (b"", b""),  # connects and says nothing
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n"),  # headers that never end
        (b"POST /lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nnumber=1", b"1"),  # a body that never ends
    ],
    ids=["silent", "dripping headers", "dripping body"],
)
def test_a_request_not_whole_by_the_deadline_is_closed(tmp_path: Path, first: bytes, drip: bytes) -> None:
    with oss(tmp_path, request_timeout=0.6) as server:
        slow = connect(server, first=first)
        waited = closed_after(slow, 5, drip=drip)
        assert waited is not None and waited >= 0.5, waited
        slow.close()
        assert answered(server).startswith(b"HTTP/1.1 200")


def test_an_idle_connection_after_an_answer_is_closed_and_so_is_a_dripping_second_request(tmp_path: Path) -> None:
    with oss(tmp_path, request_timeout=0.6, keep_alive=1) as server:
        idle = connect(server, first=REQUEST)
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_after(idle, 5) is not None
        dripping = connect(server, first=REQUEST)
        assert dripping.recv(65536).startswith(b"HTTP/1.1 200")
        dripping.sendall(b"GET / HTTP/1.1\r\n")
        waited = closed_after(dripping, 5, drip=b"X-Slow: 1\r\n")  # keeps sending: the keep-alive timer alone would not fire
        assert waited is not None and waited >= 0.5


def test_one_client_gets_at_most_its_share_of_connections(tmp_path: Path) -> None:
    with oss(tmp_path, per_client=3) as server:
        held = [connect(server) for _ in range(3)]
        extra = connect(server)
        assert closed_after(extra, 2) is not None
        assert all(closed_after(sock, 0.3) is None for sock in held)
        assert answered(server, "127.0.0.2").startswith(b"HTTP/1.1 200")  # another client is served
        held.pop().close()
        time.sleep(0.2)
        again = connect(server, first=REQUEST)  # the freed place can be taken again
        again.settimeout(5)
        assert again.recv(65536).startswith(b"HTTP/1.1 200")
        for sock in [*held, extra, again]:
            sock.close()


def test_at_the_cap_the_longest_waiting_connection_gives_way(tmp_path: Path) -> None:
    with oss(tmp_path, max_connections=4, per_client=100) as server:
        silent = []
        for i in range(4):
            silent.append(connect(server, f"127.0.2.{i + 1}"))
            time.sleep(0.05)  # in this order
        assert answered(server, "127.0.0.2").startswith(b"HTTP/1.1 200")
        assert closed_after(silent[0], 2) is not None  # the one that waited longest
        assert all(closed_after(sock, 0.3) is None for sock in silent[1:])
        for sock in silent:
            sock.close()


def test_a_trusted_proxy_is_not_held_to_the_per_client_share(tmp_path: Path) -> None:
    app = create_app(tmp_path / "oss.db", [SECRET])
    with Background(app, Limits(per_client=2), forwarded_allow_ips="127.0.0.0/24") as server:
        held = [connect(server, "127.0.0.1") for _ in range(4)]
        assert all(closed_after(sock, 0.3) is None for sock in held)
        other = [connect(server, "127.0.3.1") for _ in range(3)]  # not a proxy: two at most
        assert sum(closed_after(sock, 1) is not None for sock in other) == 1
        for sock in held + other:
            sock.close()


def test_an_answer_that_takes_past_its_deadline_is_cut_off() -> None:
    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":  # never answers: waits until the connection is gone
            while (await receive())["type"] != "http.disconnect":
                pass

    with Background(slow_app, Limits(answer_timeout=0.5)) as server:
        waiting = connect(server, first=REQUEST)
        waited = closed_after(waiting, 10)
        assert waited is not None and 0.4 <= waited < 5, waited
