"""Carts that answer in hostile ways: dripping, huge and endless answers (issue 11.3 and 11.4).

A store's `timeout` is the deadline of a whole attempt: connecting, sending, the
headers and the body of every request the record makes, together. A cart that
drips its answer a byte at a time is given up at that deadline and the record is
retried with a reason that says so. An answer is read up to MAX_ANSWER_BYTES and
no further: a 200 MB error answer costs the controller no more memory than a
small one, an endless chunked answer ends, and each is judged by its status (a 2xx
too big to be understood, where the adapter must read it, fails clearly).

Every cart is a real HTTP server on 127.0.0.1 (`tests/carts/fakeserver.py`), the
webhook receiver the `Hook` of tests/stackhelpers.py; the memory figure comes from
a real controller process.
"""

from __future__ import annotations

import gzip
import itertools
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from statusctl.carts.base import MAX_ANSWER_BYTES

from ..carts.fake_woocommerce import KEY, SECRET, WooFake
from ..carts.fakeserver import Answer, FakeServer, Request
from ..stackhelpers import (
    STORE,
    Hook,
    cli,
    fill,
    history_rows,
    hook_url,
    serve,
    setup_db,
    stack_rows,
)
from .conftest import Figures

MiB = 2**20
NO_RETRY_IN_RUN = {"StackRetrySchedule": "60", "StackMaxAttempts": "5"}


class Source:
    """An answer body written piece by piece: counts what was written, and knows when the reader left."""

    def __init__(self, pieces: Iterable[bytes], *, every: float = 0.0, total: int | None = None,
                 guard: float = 120.0) -> None:
        self.pieces, self.every, self.total, self.guard = pieces, every, total, guard
        self.written = 0
        self.ended = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        until = time.monotonic() + self.guard  # a test that fails must not hang for ever
        try:
            for piece in self.pieces:
                if time.monotonic() > until or (self.total is not None and self.written >= self.total):
                    return
                piece = piece if self.total is None else piece[: self.total - self.written]
                yield piece
                self.written += len(piece)
                if self.every:
                    time.sleep(self.every)
        finally:
            self.ended.set()


def one_byte_at_a_time(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def one_record(db: Path, url: str, timeout: str) -> str:
    setup_db(db, {STORE: url}, settings=NO_RETRY_IN_RUN, options={STORE: [f"timeout={timeout}"]})
    ((uid,),) = fill(db, records=1, orders=1).values()
    return uid


# -- 11.3: the timeout is the whole attempt's deadline ------------------------------------------


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_a_dripping_cart_is_given_up_at_the_stores_timeout(phase: str, db_file: Path, figures: Figures):
    """A byte every 0.2 s never trips a per-read timeout of 2 s; the deadline of the attempt does."""
    hook = Hook()
    with serve(hook) as (_, server):
        uid = one_record(db_file, hook_url(server), "2")
        if phase == "body":
            drip = Source(itertools.repeat(b"x"), every=0.2)
            hook.fail(uid, Answer(200, headers={"Content-Type": "text/plain"}, stream=drip))
        else:  # the status line and the headers, one byte at a time
            drip = Source(one_byte_at_a_time(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10_000), every=0.2)
            hook.fail(uid, Answer(200, stream=drip, raw=True))
        started = time.monotonic()
        ran = cli("stack", "run", "--json")
        gave_up = time.monotonic() - started
        assert drip.ended.wait(10), "the controller never closed the dripping connection"
    assert ran.code == 3, ran.stderr
    (row,) = stack_rows(db_file)
    assert row["uid"] == uid and row["state"] != "failed"
    (tried,) = history_rows(db_file, uid)
    assert tried["outcome"] == "retry"
    assert "timed out" in tried["reason"] and "timeout of 2 s" in tried["reason"], tried["reason"]
    # Given up at the deadline: not after the drip's 120 s guard, and not before 2 s.
    assert 2000 <= tried["duration_ms"] < 20_000, tried
    figures(f"dripping cart ({phase}), timeout=2", {"gave up after s": round(gave_up, 2),
                                                   "attempt duration ms": tried["duration_ms"]})


def woo_order(db: Path, server: FakeServer, timeout: str) -> str:
    """A WooCommerce store on `server` (tracking as notes) and one record shipping its order."""
    setup_db(db, {}, settings=NO_RETRY_IN_RUN)
    ran = cli("stores", "add", "woo", "--cart", "woocommerce", "--url", server.base_url, "--secret", f"key={KEY}",
              "--secret", f"secret={SECRET}", "--option", f"timeout={timeout}")
    assert ran.code == 0, ran.stderr
    csv = db.parent / "woo.csv"
    csv.write_text("order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity,"
                   "cart_order_id,cart_line_id\n1001,2026-11-20,Lee Kan,lee@example.com,02139,MUG-1,Mug,2,501,9001\n")
    assert cli("orders", "import", str(csv), "--store", "woo").code == 0
    ran = cli("ship", "1001", "--tracking", "1Z999", "--carrier", "UPS")
    assert ran.code == 0, ran.stderr
    ((uid,),) = [[r["uid"] for r in stack_rows(db)]]
    return uid


@pytest.mark.parametrize(("timeout", "outcome"), [("2", "retry"), ("20", "ok")])
def test_the_deadline_holds_for_all_the_requests_of_a_record(timeout: str, outcome: str, db_file: Path):
    """Each of WooCommerce's requests for a shipment answers in 0.8 s, well within 2 s; the three
    of them together do not, and the record is retried. With room for all three it goes out."""
    woo = WooFake(extension=False)

    def slow(req: Request) -> Answer:
        answer = woo(req)
        answer.delay = 0.8
        return answer

    with FakeServer(slow) as server:
        uid = woo_order(db_file, server, timeout)
        ran = cli("stack", "run", "--json")
        sent = len(server.requests)
    (tried,) = history_rows(db_file, uid)
    assert tried["outcome"] == outcome, tried
    if outcome == "retry":
        assert ran.code == 3 and "timeout of 2 s (for the whole attempt" in tried["reason"], tried["reason"]
        assert 2 <= sent <= 3, "the attempt went on past its deadline"
        assert 2000 <= tried["duration_ms"] < 2400 + 800, tried
    else:
        assert ran.code == 0 and sent >= 3


def test_stores_test_keeps_the_deadline_too(db_file: Path):
    woo = WooFake()
    with FakeServer(woo) as server:
        woo_order(db_file, server, "1")
        drip = Source(itertools.repeat(b" "), every=0.2)
        server.fail_next(Answer(200, headers={"Content-Type": "application/json"}, stream=drip))
        ran = cli("stores", "test", "woo")
    assert ran.code == 1
    assert "timed out" in ran.stdout + ran.stderr and "timeout of 1 s" in ran.stdout + ran.stderr, ran


# -- 11.4: answers are read up to a bound ---------------------------------------------------------

# The controller's own peak RSS: VmHWM of its process (ru_maxrss would also count the test
# process it was forked from, which Linux carries across the exec).
RSS_WRAPPER = """
import atexit, sys
def peak():
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\npeak-rss-kib {kib}\\n")
atexit.register(peak)
sys.argv[0] = "statusctl"
from statusctl.cli.main import run
run()
"""


def controller_peak_rss(db: Path) -> tuple[int, str]:
    """Run `statusctl stack run` as a real process; (its peak RSS in KiB, its stderr)."""
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, "--db", str(db), "stack", "run"], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=db.parent)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("peak-rss-kib ")]
    assert line, proc.stderr[-2000:]
    return int(line[-1].split()[1]), proc.stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_200_mb_error_answer_costs_no_more_memory_than_a_small_one(tmp_path: Path, figures: Figures):
    size = 200 * 1000 * 1000
    peaks = {}
    for case, body in (("small", 1000), ("200 MB", size)):
        db = tmp_path / f"{case}.db"
        hook = Hook()
        with serve(hook) as (_, server):
            uid = one_record(db, hook_url(server), "60")
            source = Source(itertools.repeat(b"<p>Internal error</p>" + b"x" * (64 * 1024 - 21)), total=body)
            hook.fail(uid, Answer(503, headers={"Content-Type": "text/html", "Content-Length": str(body)}, stream=source))
            peaks[case], stderr = controller_peak_rss(db)
            assert source.ended.wait(10)
        (tried,) = history_rows(db, uid)
        assert tried["outcome"] == "retry" and tried["status"] == 503, (tried, stderr[-1000:])
        assert tried["answer"].startswith("<p>Internal error</p>xxx"), tried["answer"][:100]
    # The controller stopped reading at the bound (what it did not read stayed in socket buffers).
    assert source.written < MAX_ANSWER_BYTES + 32 * MiB, source.written
    grown = peaks["200 MB"] - peaks["small"]
    assert grown < 48 * 1024, f"a 200 MB answer took the controller from {peaks['small']} KiB to {peaks['200 MB']} KiB"
    figures("200 MB error answer", {"controller peak RSS MiB": round(peaks["200 MB"] / 1024, 1),
                                    "with a 1 KB answer MiB": round(peaks["small"] / 1024, 1),
                                    "bytes the cart got to write MiB": round(source.written / MiB, 1)})


def test_an_endless_chunked_answer_ends_and_is_judged_by_its_status(db_file: Path):
    """The webhook needs nothing of a 2xx answer but its status: OK. A 5xx: retried, with an excerpt."""
    hook = Hook()
    with serve(hook) as (_, server):
        setup_db(db_file, {STORE: hook_url(server)}, settings=NO_RETRY_IN_RUN)
        orders = fill(db_file, records=2, orders=2)
        (ok_uid,), (error_uid,) = orders.values()
        endless_ok, endless_error = Source(itertools.repeat(b"ok " * 20_000)), Source(itertools.repeat(b"busy " * 20_000))
        hook.fail(ok_uid, Answer(200, stream=endless_ok))
        hook.fail(error_uid, Answer(500, stream=endless_error))
        ran = cli("stack", "run", "--json")
        assert endless_ok.ended.wait(10) and endless_error.ended.wait(10)
    assert ran.code == 3, ran.stderr
    assert [r["uid"] for r in stack_rows(db_file)] == [error_uid]
    (ok,) = history_rows(db_file, ok_uid)
    (error,) = history_rows(db_file, error_uid)
    assert ok["outcome"] == "ok" and ok["status"] == 200
    assert error["outcome"] == "retry" and error["status"] == 500 and error["answer"].startswith("busy busy")
    assert endless_ok.written < MAX_ANSWER_BYTES + 32 * MiB


@pytest.mark.parametrize("endless", [True, False])
def test_a_2xx_too_big_to_read_fails_clearly_where_the_answer_must_be_read(endless: bool, db_file: Path):
    """WooCommerce's answers are read (the order's notes, say): one past the bound cannot be judged."""
    woo = WooFake(extension=False)
    with FakeServer(woo) as server:
        uid = woo_order(db_file, server, "60")
        size = None if endless else MAX_ANSWER_BYTES + 1
        source = Source(itertools.repeat(b'[{"note":"' + b"n" * 65_000 + b'"},'), total=size)
        headers = {"Content-Type": "application/json", **({} if endless else {"Content-Length": str(size)})}
        server.fail_next(Answer(200, headers=headers, stream=source))
        ran = cli("stack", "run", "--json")
        assert source.ended.wait(10)
    assert ran.code == 3
    (row,) = stack_rows(db_file)
    assert row["state"] == "failed"
    (tried,) = history_rows(db_file, uid)
    assert tried["outcome"] == "failed" and tried["status"] == 200
    assert "with an answer of more than 4 MiB, more than statusctl reads" in tried["reason"], tried["reason"]


def test_attempts_cut_at_the_deadline_leave_no_connection_behind(db_file: Path):
    """Six dripping answers cut by the deadline, on one controller whose clients hold 4 connections
    each: if a cut attempt kept its connection, the seventh record would wait for the pool for ever."""
    hook = Hook()
    with serve(hook) as (_, server):
        setup_db(db_file, {STORE: hook_url(server)}, settings=NO_RETRY_IN_RUN, options={STORE: ["timeout=0.5"]})
        orders = fill(db_file, records=7, orders=7)
        uids = [uid for (uid,) in orders.values()]
        drips = [Source(itertools.repeat(b"x"), every=0.1) for _ in uids[:6]]
        for uid, drip in zip(uids[:6], drips, strict=True):
            hook.fail(uid, Answer(200, stream=drip))
        ran = cli("stack", "run", "--concurrency", "1", "--json")
        assert all(d.ended.wait(10) for d in drips)
    assert ran.code == 3, ran.stderr
    outcomes = {uid: [h["outcome"] for h in history_rows(db_file, uid)] for uid in uids}
    assert outcomes == {**{uid: ["retry"] for uid in uids[:6]}, uids[6]: ["ok"]}, outcomes


def test_stores_test_reads_a_huge_answer_only_up_to_the_bound(db_file: Path):
    woo = WooFake()
    with FakeServer(woo) as server:
        woo_order(db_file, server, "60")
        source = Source(itertools.repeat(b"[" * 65536), total=200 * 1000 * 1000)
        server.fail_next(Answer(200, headers={"Content-Type": "application/json", "Content-Length": "200000000"},
                                stream=source))
        ran = cli("stores", "test", "woo")
        assert source.ended.wait(10)
    assert ran.code == 1
    assert "with an answer of more than 4 MiB, more than statusctl reads" in " ".join(ran.stderr.split()), ran.stderr
    assert source.written < MAX_ANSWER_BYTES + 32 * MiB


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    wbits = zlib.MAX_WBITS if encoding == "deflate" else -zlib.MAX_WBITS  # "raw deflate": no zlib wrapper
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_zip_bomb_is_inflated_only_up_to_the_bound(tmp_path: Path, figures: Figures):
    """200 MB of zeros, gzip-compressed to some 200 KB: inflated a piece at a time, and only 4 MiB of it."""
    bomb = gzip.compress(bytes(200 * 1000 * 1000), compresslevel=9)
    peaks = {}
    for case, body in (("small", gzip.compress(b"busy")), ("bomb", bomb)):
        db = tmp_path / f"{case}.db"
        hook = Hook()
        with serve(hook) as (_, server):
            uid = one_record(db, hook_url(server), "60")
            hook.fail(uid, Answer(503, body, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}))
            peaks[case], stderr = controller_peak_rss(db)
        (tried,) = history_rows(db, uid)
        assert tried["outcome"] == "retry" and tried["status"] == 503, (tried, stderr[-1000:])
    assert peaks["bomb"] - peaks["small"] < 48 * 1024, peaks
    figures("zip bomb (200 MB of zeros as 0.2 MB of gzip)", {"controller peak RSS MiB": round(peaks["bomb"] / 1024, 1),
                                                             "with a small answer MiB": round(peaks["small"] / 1024, 1)})


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_compressed_answers_are_still_read(encoding: str, db_file: Path):
    """WooCommerce answering every request compressed: the record goes out as it would plain."""
    woo = WooFake(extension=False)

    def packed(req: Request) -> Answer:
        answer = woo(req)
        data, headers = answer.encoded()
        return Answer(answer.status, _compress(data, encoding),
                      {**headers, "Content-Encoding": "deflate" if encoding == "raw deflate" else encoding})

    with FakeServer(packed) as server:
        uid = woo_order(db_file, server, "60")
        ran = cli("stack", "run", "--json")
    assert ran.code == 0, ran.stdout
    assert [h["outcome"] for h in history_rows(db_file, uid)] == ["ok"]
    assert woo.notes["501"], "the shipment note was not written"
