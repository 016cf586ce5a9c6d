"""The reliability suites' receiver: `tests.stackhelpers.Hook` plus a numbered log of every request.

The receiver is a thread of the test process serving 127.0.0.1 (`stackhelpers.serve`).
Besides what `Hook` keeps (signature checked, 2xx answers counted per webhook-id),
`Receiver` logs every request in arrival order with the record's note, so a
test can check order per order and explain every resend, and counts the requests
of each record open at once (a record sent twice at the same time shows there). `HoldNth` holds one
chosen request open so that a controller can be killed while it is mid-send.
`SilentServer` is a receiver that never answers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..carts.fakeserver import Answer, Request
from ..stackhelpers import PATH, Hook


@dataclass
class Arrival:
    """One request, in the order the receiver read it."""

    n: int  # arrival sequence, from 1
    uid: str  # webhook-id: the record's stable id
    order: str
    note: str | None


class Receiver(Hook):
    """A `Hook` that numbers every request and keeps the record's note (the producer's sequence)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self.open_by_uid: Counter[str] = Counter()
        self.max_open_per_uid = 0  # the most requests of one record the receiver was handling at once

    def __call__(self, req: Request) -> Answer:
        if req.method != "POST" or not req.body:
            return super().__call__(req)
        try:
            body = json.loads(req.body)
            uid, order, note = body["id"], body["order"]["number"], body.get("note")
        except (ValueError, KeyError, TypeError):
            return super().__call__(req)
        with self.lock:
            self.arrivals.append(Arrival(len(self.arrivals) + 1, uid, order, note))
            self.open_by_uid[uid] += 1
            self.max_open_per_uid = max(self.max_open_per_uid, self.open_by_uid[uid])
        try:
            return super().__call__(req)
        finally:
            with self.lock:
                self.open_by_uid[uid] -= 1

    # -- what tests read --------------------------------------------------------

    def accepted(self) -> dict[str, int]:
        """webhook-id -> how many times it was answered 2xx."""
        with self.lock:
            return dict(self.counts)

    def arrival_order(self) -> dict[str, list[str]]:
        """order -> the webhook-ids of its requests as they arrived, repeats of a record collapsed.

        A record is resent only while it is still its order's head, so collapsing
        consecutive repeats must give back the queue order exactly.
        """
        with self.lock:
            arrivals = list(self.arrivals)
        out: dict[str, list[str]] = {}
        for a in arrivals:
            seen = out.setdefault(a.order, [])
            if not seen or seen[-1] != a.uid:
                seen.append(a.uid)
        return out

    def notes(self) -> dict[str, list[str | None]]:
        """order -> the notes of its accepted records, in the order they were accepted."""
        with self.lock:
            hits = [h for h in self.hits if 200 <= h.status < 300]
            note = {a.uid: a.note for a in self.arrivals}
        out: dict[str, list[str | None]] = {}
        for h in sorted(hits, key=lambda h: h.answered):
            out.setdefault(h.order, []).append(note.get(h.uid))
        return out


class HoldNth:
    """A `Hook.before` that holds the `nth` request it sees (counting from when it is set) until released.

    `held` is set once the request is held; `release(ok)` lets it go with a 2xx
    (the receiver processed it although the sender may be gone) or, with ok
    False, with the fake server's 500 (it never got through).
    """

    def __init__(self, nth: int, guard: float = 30.0) -> None:
        self.nth = nth
        self.guard = guard
        self.lock = threading.Lock()
        self.seen = 0
        self.uid: str | None = None
        self.held = threading.Event()
        self._released = threading.Event()
        self._ok = True

    def __call__(self, uid: str, order: str) -> None:
        with self.lock:
            self.seen += 1
            if self.seen != self.nth:
                return
            self.uid = uid
        self.held.set()
        self._released.wait(self.guard)
        if not self._ok:
            raise RuntimeError("held request let go without an answer")

    def release(self, ok: bool) -> None:
        self._ok = ok
        self._released.set()


class SilentServer:
    """A receiver that reads each request and never answers it, until `speak()`: then 204 to every new one.

    Keeps the webhook-id of every request, how many of each were open at the
    same time at most, and which ones it answered.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.lock = threading.Lock()
        self.speaking = threading.Event()
        self.seen: list[str] = []
        self.answered: list[str] = []
        self.open: Counter[str] = Counter()
        self.max_open_per_record = 0
        self._conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{PATH}"

    def speak(self) -> None:
        self.speaking.set()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])
                )
                length = int(headers.get("content-length", "0"))
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf[length:]
                uid = headers.get("webhook-id", "?")
                with self.lock:
                    self.seen.append(uid)
                    self.open[uid] += 1
                    self.max_open_per_record = max(self.max_open_per_record, self.open[uid])
                    speaking = self.speaking.is_set()
                if not speaking:
                    # Never answer: the sender gives up (its timeout) and closes the connection.
                    with contextlib.suppress(OSError):
                        while conn.recv(65536):
                            pass
                    with self.lock:
                        self.open[uid] -= 1
                    return
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                with self.lock:
                    self.open[uid] -= 1
                    self.answered.append(uid)

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        with self.lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()
