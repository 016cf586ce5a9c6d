"""Helpers for the stack and controller tests: a counting webhook receiver, a quick stack filler, CLI runners.

`Hook` is a vendor handler for `tests.carts.fakeserver.FakeServer`: it verifies
every request's Standard Webhooks signature with `statusctl.carts.signing.verify`,
counts the 2xx answers it gave per webhook-id (the record's stable id) and logs
every signed request with when it arrived and when it was answered, so tests can
check "delivered once", "never twice", order per order and parallelism.

The test's database on either backend (`target`) and the helpers that fill and
read it are in tests/stackdb.py, re-exported here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statusctl.carts import signing
from statusctl.storage.backends import Target, is_postgres

from .carts.fakeserver import Answer, FakeServer, Request
from .stackdb import (  # noqa: F401  (re-exported: every stack test imports them from here)
    BACKENDS,
    FAST_SCHEDULE,
    SECRET,
    STORE,
    db_errors,
    fill,
    history_rows,
    integrity_errors,
    opened,
    pg_initialized,
    pg_target,
    query,
    set_param,
    setup_db,
    stack_rows,
    target,
)

OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-key-the-receiver-holds-xx").decode()
PATH = "/hooks/status"


# -- the receiver ---------------------------------------------------------------


@dataclass
class Hit:
    """One signed request the receiver saw."""

    uid: str
    order: str
    arrived: float  # time.monotonic() when the request was read
    status: int = 0  # what it was answered (0 while still being handled)
    answered: float = 0.0  # time.monotonic() when the answer was decided


class Hook:
    """A webhook endpoint that verifies signatures and counts deliveries per webhook-id.

    - `script[uid]`: answers given to that record's next requests, before the real (2xx) one;
    - `before(uid, order)`: called before a 2xx answer, outside the lock; may block (gates, barriers);
    - `pause`: seconds each 2xx answer takes (so sends overlap).
    """

    def __init__(self, secrets: list[str] | None = None, *, pause: float = 0.0, ok_status: int = 204) -> None:
        self.secrets = secrets if secrets is not None else [SECRET]
        self.pause = pause
        self.ok_status = ok_status
        self.lock = threading.Lock()
        self.hits: list[Hit] = []
        self.counts: Counter[str] = Counter()
        self.script: dict[str, deque[Answer]] = {}
        self.before: Callable[[str, str], None] | None = None
        self.refused = 0
        self.active = 0
        self.max_active = 0
        self.active_by_order: Counter[str] = Counter()
        self.max_active_per_order = 0

    def fail(self, uid: str, *answers: Answer) -> None:
        """Answer the record's next requests with these, then normally."""
        with self.lock:
            self.script.setdefault(uid, deque()).extend(answers)

    def __call__(self, req: Request) -> Answer:
        if req.path != PATH or req.method != "POST":
            return Answer(404, "no such endpoint")
        try:
            uid = signing.verify(self.secrets, req.headers, req.body)
        except signing.SignatureError as exc:
            with self.lock:
                self.refused += 1
            return Answer(401, f"signature refused: {exc}")
        body = json.loads(req.body)
        assert body["id"] == uid, "the body id and the webhook-id must agree"
        hit = Hit(uid, body["order"]["number"], time.monotonic())
        with self.lock:
            self.hits.append(hit)
            queue = self.script.get(uid)
            scripted = queue.popleft() if queue else None
            if scripted is not None:
                hit.status, hit.answered = scripted.status, time.monotonic()
                return scripted
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.active_by_order[hit.order] += 1
            self.max_active_per_order = max(self.max_active_per_order, self.active_by_order[hit.order])
        ok = False
        try:
            if self.before is not None:
                self.before(uid, hit.order)
            if self.pause:
                time.sleep(self.pause)
            ok = True
        finally:
            with self.lock:
                self.active -= 1
                self.active_by_order[hit.order] -= 1
                if ok:
                    self.counts[uid] += 1
                # A failing `before` (a broken barrier) becomes the fake server's 500.
                hit.status, hit.answered = (self.ok_status if ok else 500), time.monotonic()
        return Answer(self.ok_status, b"")

    # -- what tests read --------------------------------------------------------

    def delivered(self) -> set[str]:
        with self.lock:
            return set(self.counts)

    def twice(self) -> dict[str, int]:
        """webhook-ids that were accepted more than once."""
        with self.lock:
            return {uid: n for uid, n in self.counts.items() if n > 1}

    def tries(self, uid: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.uid == uid]

    def ok_hit(self, uid: str) -> Hit:
        """The (first) request of `uid` that was accepted."""
        return next(h for h in self.tries(uid) if 200 <= h.status < 300)

    def accepted_order(self, order: str) -> list[str]:
        """webhook-ids of one order in the order the receiver accepted them."""
        with self.lock:
            hits = [h for h in self.hits if h.order == order and 200 <= h.status < 300]
        return [h.uid for h in sorted(hits, key=lambda h: h.answered)]

    def wait_for(self, predicate: Callable[[Hook], bool], timeout: float = 30.0) -> bool:
        """Poll until predicate(self) holds (a hang guard, not a measurement)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)


class Gate:
    """Holds 2xx answers until opened (for `Hook.before`), counting the requests it holds.

    `hold`: how many requests to hold (None: every one while closed). With
    `lose` the held requests, once let go, get an error instead of OK, as when
    the sender died before the answer mattered.
    """

    def __init__(self, hold: int | None = None, *, lose: bool = False, guard: float = 30.0) -> None:
        self.opened = threading.Event()
        self.hold = hold
        self.lose = lose
        self.guard = guard
        self.lock = threading.Lock()
        self.held: list[str] = []

    def __call__(self, uid: str, order: str) -> None:
        with self.lock:
            if self.opened.is_set() or (self.hold is not None and len(self.held) >= self.hold):
                return
            self.held.append(uid)
        self.opened.wait(self.guard)
        if self.lose:
            raise RuntimeError("held request let go without an answer")

    def count(self) -> int:
        with self.lock:
            return len(self.held)

    def open(self) -> None:
        self.opened.set()


@contextlib.contextmanager
def serve(hook: Hook | None = None) -> Iterator[tuple[Hook, FakeServer]]:
    """A `Hook` served on 127.0.0.1; yields (hook, server) and opens any gate on the way out."""
    hook = hook if hook is not None else Hook()
    with FakeServer(hook) as server:
        try:
            yield hook, server
        finally:
            gate = hook.before
            if isinstance(gate, Gate):
                gate.open()


def hook_url(server: FakeServer) -> str:
    return server.base_url + PATH


class GarbageServer:
    """Answers every connection with bytes that are not HTTP, then closes it (a malformed answer)."""

    def __init__(self, reply: bytes = b"HELLO THIS IS NOT HTTP\r\n\r\n") -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{PATH}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self) -> GarbageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- the command line ------------------------------------------------------------


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str, input: str | None = None) -> Ran:
    """Run `statusctl ARGS` in-process (CliRunner) on the test's STATUSCTL_DB."""
    from typer.testing import CliRunner

    from statusctl.cli import common
    from statusctl.cli.main import app

    common.set_db_option(None)
    result = CliRunner().invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def statusctl_cmd(db: Target, *args: str) -> list[str]:
    """`python -m statusctl --db DB ARGS` for a real process."""
    return [sys.executable, "-m", "statusctl", "--db", str(db), *args]


def spawn(db: Target, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start `statusctl --db DB ARGS` as a child process, output captured (in the file's folder, for SQLite)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        statusctl_cmd(db, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=None if is_postgres(db) else Path(db).parent, **kwargs,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> Ran:
    """Wait (with a hang guard) for a child and collect its output; kills it if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"statusctl did not finish within {timeout} s; stderr: {err[-2000:]}") from None
    return Ran(proc.returncode, out, err)


def explain(*procs: subprocess.Popen[str] | None) -> str:
    """For an assertion message: which children exited, with what and why (running ones are left alone)."""
    parts = []
    for proc in procs:
        if proc is None:
            continue
        if proc.poll() is None:
            parts.append(f"pid {proc.pid} still running")
        else:
            err = proc.stderr.read() if proc.stderr else ""
            parts.append(f"pid {proc.pid} exited {proc.returncode}: {err[-1500:]}")
    return "; ".join(parts)


def run_process(db: Target, *args: str, timeout: float = 60.0) -> Ran:
    return finish(spawn(db, *args), timeout)
