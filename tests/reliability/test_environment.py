"""Environment faults: a read-only directory, a full disk, a lock held past the busy timeout,
a corrupt database file and a receiver that never answers.

Every command runs as a real `python -m statusctl` process. Each fault must give
one clear sentence on stderr (no traceback, no raw SQLite message) and the
documented exit code, and nothing on the stack may be lost: once the fault is
gone, every record queued before it is still there and is delivered.

The read-only directory uses a read-only bind mount when the tests run as root
(root ignores permission bits) and `chmod` otherwise; the full disk uses a small
tmpfs, which needs root: where either cannot be made the test skips and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..stackhelpers import (
    STORE,
    Ran,
    cli,
    explain,
    fill,
    finish,
    hook_url,
    query,
    run_process,
    serve,
    setup_db,
    spawn,
    stack_rows,
)
from .receiver import SilentServer

pytestmark = pytest.mark.slow
GUARD = 60.0


def one_sentence(ran: Ran, *words: str) -> str:
    """The process failed with exit 1 and one `Error: …` line on stderr holding every word."""
    assert ran.code == 1, f"exit {ran.code}; stderr: {ran.stderr}"
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"not one sentence: {ran.stderr!r}"
    assert "Traceback" not in ran.stderr and "database problem" not in ran.stderr, ran.stderr
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"
    return lines[0]


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` (and the files in it) read-only for statusctl for the duration."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    bind = _sh("mount", "--bind", str(directory), str(directory))
    if bind.returncode != 0:
        pytest.skip(f"running as root (which ignores permissions) and cannot bind-mount: {bind.stderr.strip()}")
    try:
        ro = _sh("mount", "-o", "remount,bind,ro", str(directory))
        if ro.returncode != 0:
            pytest.skip(f"running as root and cannot remount read-only: {ro.stderr.strip()}")
        yield
    finally:
        if _sh("umount", str(directory)).returncode != 0:
            _sh("umount", "-l", str(directory))


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (skips where mounting is not allowed)."""
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    mounted = _sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "statusctl-full-disk", str(where))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        if _sh("umount", str(where)).returncode != 0:
            _sh("umount", "-l", str(where))


def fill_disk(directory: Path, leave: int) -> Path:
    """Take all but `leave` bytes of the free space of `directory`'s file system."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free
    with contextlib.suppress(OSError), filler.open("wb") as f:  # a write past the end fails: fine
        f.write(b"\0" * max(0, free - leave))
    return filler


def apply_file(path: Path, orders: list[str], rows: int, note: str = "") -> Path:
    """An apply CSV toggling the orders round robin (each row changes a label: one record)."""
    lines = ["action,event,order,note"]
    for k in range(rows):
        number = orders[k % len(orders)]
        event = "order-approved" if (k // len(orders)) % 2 == 0 else "order-on-hold"
        lines.append(f"fire,{event},{number},{note}")
    path.write_text("\n".join(lines) + "\n")
    return path


def snapshot(db: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str | None]], int]:
    """What a failed command must not have changed: the stack, the order labels, the label history."""
    records = [(r["uid"], r["payload"]) for r in stack_rows(db)]
    labels = [(r["number"], r["label"]) for r in query(db, "SELECT number, label FROM orders ORDER BY number")]
    history = query(db, "SELECT COUNT(*) AS n FROM label_history")[0]["n"]
    return records, labels, history


def drain_everything(db: Path, hook: object, uids: set[str]) -> None:
    """Runs `stack run` until every record is delivered (leases of a stopped run end within seconds)."""
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        ran = run_process(db, "stack", "run", "--json", timeout=GUARD)
        assert ran.code in (0, 3), ran.stderr
        if not stack_rows(db):
            break
        time.sleep(0.5)
    assert stack_rows(db) == [], "records stayed on the stack"
    assert hook.delivered() >= uids, "a record queued before the fault was lost"  # type: ignore[attr-defined]


# -- a read-only directory ---------------------------------------------------------


def test_a_database_in_a_read_only_directory_says_so_and_loses_nothing(db_file: Path) -> None:
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=20, orders=5)
        uids = {u for us in orders.values() for u in us}
        before = snapshot(db_file)
        actions = apply_file(db_file.parent / "apply.csv", list(orders), 10)
        with read_only(db_file.parent):
            for args in (["fire", "order-approved", "O00000"], ["apply", str(actions)], ["stack", "run"],
                         ["stack", "status"], ["stack", "list", "--json"], ["init"]):
                one_sentence(run_process(db_file, *args), str(db_file), "read-only")
        assert snapshot(db_file) == before
        assert hook.delivered() == set(), "nothing can be sent without recording it"
        drain_everything(db_file, hook, uids)


# -- a full disk ---------------------------------------------------------------------


def test_a_full_disk_says_so_writes_nothing_half_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with small_disk(tmp_path / "disk", "16m") as disk:
        db = disk / "statusctl.db"
        monkeypatch.setenv("STATUSCTL_DB", str(db))
        with serve() as (hook, server):
            setup_db(db, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "2"})
            orders = fill(db, records=400, orders=100)
            uids = {u for us in orders.values() for u in us}
            before = snapshot(db)

            # No room even for the write-ahead log: every command says the disk is full.
            filler = fill_disk(disk, 0)
            for args in (["stack", "status"], ["fire", "order-approved", "O00000"], ["stack", "run"]):
                one_sentence(run_process(db, *args), "disk", "full")
            filler.unlink()
            assert snapshot(db) == before

            # Room to open, not for a big apply: all of it or nothing.
            big = apply_file(tmp_path / "big.csv", list(orders), 2000, note="x" * 500)
            filler = fill_disk(disk, 300_000)
            one_sentence(run_process(db, "apply", str(big)), "disk", "full")
            filler.unlink()
            assert snapshot(db) == before, "a failed apply left part of its rows behind"
            assert hook.delivered() == set()

            # The disk fills up while a controller drains: it stops with the sentence, the records
            # it sent but could not record stay on the stack, and go again once there is room.
            filler = fill_disk(disk, 150_000)
            stopped = run_process(db, "stack", "run", timeout=GUARD)
            one_sentence(stopped, "disk", "full")
            sent_before = hook.delivered()
            assert sent_before, "the drain should have got going before the disk filled"
            left = {r["uid"] for r in stack_rows(db)}
            assert uids - left <= sent_before, "a record left the stack without being delivered"
            filler.unlink()
            drain_everything(db, hook, uids)
    resent = set(hook.twice())
    assert resent <= sent_before & left, "only records sent but not recorded when the disk filled go twice"


# -- a lock held past the busy timeout ------------------------------------------------


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another process holds the database's write lock (BEGIN IMMEDIATE) for the duration."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"
         "c.execute('ROLLBACK')\n", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(GUARD)


def test_a_lock_held_past_the_busy_timeout_says_so_and_loses_nothing(db_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.5")
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "2"})
        orders = fill(db_file, records=20, orders=5)
        uids = {u for us in orders.values() for u in us}
        actions = apply_file(db_file.parent / "apply.csv", list(orders), 10)
        csv = db_file.parent / "more-orders.csv"
        csv.write_text("order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"
                       "N1,2026-11-20,New,n@example.com,90210,SKU-1,Mug,1\n")
        before = snapshot(db_file)
        with locked(db_file):
            started = time.monotonic()
            for args in (["fire", "order-approved", "O00000"], ["apply", str(actions)], ["stack", "run"],
                         ["stack", "retry", "--failed"], ["stack", "drop", "--failed", "--yes"],
                         ["config", "set", "StackConcurrency", "4"], ["orders", "import", str(csv), "--store", STORE]):
                one_sentence(run_process(db_file, *args), "stayed locked by another process for more than 0.5 s")
            # Readers are not held up by a writer (WAL).
            for args in (["stack", "status", "--json"], ["stack", "list", "--json"], ["orders", "list", "--json"]):
                ran = run_process(db_file, *args)
                assert (ran.code, ran.stderr) == (0, ""), ran.stderr
            assert time.monotonic() - started < 30, "the busy timeout was not 0.5 s"
        assert snapshot(db_file) == before
        assert hook.delivered() == set()
        drain_everything(db_file, hook, uids)


def test_a_watcher_waits_out_a_lock_that_outlasts_the_busy_timeout(db_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.5")
    with serve() as (hook, server):
        hook.pause = 0.02
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "2"})
        orders = fill(db_file, records=300, orders=30)
        uids = {u for us in orders.values() for u in us}
        watcher = spawn(db_file, "stack", "run", "--watch", "--json")
        try:
            assert hook.wait_for(lambda h: len(h.delivered()) >= 20, GUARD), "the watcher never got going"
            with locked(db_file):
                time.sleep(2.5)  # several busy timeouts
                assert watcher.poll() is None, f"the watcher gave up: {explain(watcher)}"
            assert hook.wait_for(lambda h: h.delivered() >= uids, GUARD), "the watcher did not carry on after the lock"
            watcher.send_signal(signal.SIGTERM)
            ran = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
        assert ran.code == 0, ran.stderr
        assert "Traceback" not in ran.stderr
        warnings = [line for line in ran.stderr.splitlines() if line]
        assert warnings and all(line.startswith("Warning: ") for line in warnings), ran.stderr
        assert "stayed locked by another process for more than 0.5 s" in warnings[0]
        assert "Trying again in" in warnings[0]
        assert json.loads(ran.stdout)["ok"] is True
        drain_everything(db_file, hook, uids)


def test_a_bad_busy_timeout_variable_is_named(db_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_db(db_file, {})
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "soon")
    one_sentence(run_process(db_file, "stack", "status"), "STATUSCTL_BUSY_TIMEOUT='soon'", "seconds")


# -- a corrupt database file -----------------------------------------------------------


def _corrupt(good: Path, how: str, into: Path) -> Path:
    data = bytearray(good.read_bytes())
    if how == "header":
        data[0:32] = b"this is no SQLite file at all..."
    elif how == "truncated":
        del data[5 * 4096:]
    elif how == "text":
        data = bytearray(b"order_number,order_date\n1001,2026-11-20\n")
    into.write_bytes(bytes(data))
    return into


@pytest.mark.parametrize("how", ["header", "truncated", "text"])
def test_a_corrupt_database_file_says_so_and_is_left_as_it_is(db_file: Path, how: str) -> None:
    setup_db(db_file, {STORE: "http://127.0.0.1:9/hooks/status"})
    fill(db_file, records=20, orders=5)
    bad = _corrupt(db_file, how, db_file.parent / f"{how}.db")
    original = bad.read_bytes()
    for args in (["stack", "status"], ["stack", "list"], ["stack", "run"], ["fire", "order-approved", "O00000"],
                 ["init"]):
        one_sentence(run_process(bad, *args), str(bad), "corrupt")
    assert bad.read_bytes() == original, "statusctl changed (or replaced) a corrupt database file"


def test_a_corrupt_history_page_stops_a_run_with_the_sentence_and_keeps_the_stack(db_file: Path) -> None:
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        orders = fill(db_file, records=10, orders=5)
        uids = {u for us in orders.values() for u in us}
        pages = query(db_file, "SELECT pageno FROM dbstat WHERE name = 'stack_history'")
        size = query(db_file, "SELECT * FROM pragma_page_size")[0]["page_size"]
        with db_file.open("r+b") as f:
            for p in pages:
                f.seek((p["pageno"] - 1) * size)
                f.write(b"\xff" * size)
        ran = run_process(db_file, "stack", "run")
        one_sentence(ran, str(db_file), "corrupt")
        listed = cli("stack", "list", "--json")
        assert listed.code == 0
        assert {r["id"] for r in listed.json()} == uids, "records left the stack though their sends were not recorded"


# -- a receiver that never answers --------------------------------------------------------


def test_a_receiver_that_never_answers_is_retried_with_a_sentence_and_loses_nothing(db_file: Path) -> None:
    with SilentServer() as silent:
        # Retries 2 s apart: one `stack run` tries each record once; the lease (1 s) is shorter than a send.
        setup_db(db_file, {STORE: silent.url}, settings={"StackLeaseSeconds": "1", "StackRetrySchedule": "2"},
                 options={STORE: ["timeout=1.5"]})
        orders = fill(db_file, records=4, orders=2)
        uids = {u for us in orders.values() for u in us}
        heads = {us[0] for us in orders.values()}
        ran = run_process(db_file, "stack", "run", timeout=GUARD)
        assert ran.code == 3, ran.stderr
        assert ran.stderr == ""
        assert "2 record(s) not delivered yet" in ran.stdout and "stack list" in ran.stdout, ran.stdout
        rows = cli("stack", "list", "--json").json()
        assert {r["id"] for r in rows} == uids
        waiting = {r["id"]: r for r in rows if r["attempts"]}
        assert set(waiting) == heads
        assert all("timed out" in r["last_error"] for r in waiting.values())
        # Two watchers while it stays silent: a record is never in two sends at once (the lease is renewed).
        watchers = [spawn(db_file, "stack", "run", "--watch") for _ in range(2)]
        try:
            time.sleep(3)
            silent.speak()
            deadline = time.monotonic() + GUARD
            while set(silent.answered) < uids and time.monotonic() < deadline:
                time.sleep(0.05)
            for w in watchers:
                w.send_signal(signal.SIGTERM)
            stopped = [finish(w, GUARD) for w in watchers]
        finally:
            for w in watchers:
                if w.poll() is None:
                    w.kill()
    assert [s.code for s in stopped] == [0, 0], [s.stderr for s in stopped]
    assert set(silent.answered) == uids, "a record was lost"
    assert sorted(silent.answered) == sorted(uids), "a record answered OK was sent again"
    assert silent.max_open_per_record == 1, "one record was in two sends at the same time"
    assert stack_rows(db_file) == []
