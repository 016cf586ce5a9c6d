"""`statusctl stack top`: one frame rendered into a fixed-width console, and its read-only core."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from statusctl.cli.top import bars, render
from statusctl.core.dashboard import last_errors, send_rate, snapshot

from .carts.fakeserver import Answer, FakeServer
from .helpers import WEBHOOK_SECRET, cli, dump, open_db, setup_shop, write


@pytest.fixture
def hook() -> Iterator[FakeServer]:
    with FakeServer(lambda request: Answer(200, "ok")) as server:
        yield server


def _shop_with_traffic(tmp_path: Path, hook: FakeServer) -> None:
    """Store `web` (nothing listens: 2 records retrying) and store `hook` (3 records delivered)."""
    setup_shop()  # store web → 127.0.0.1:9, connection refused
    cli("stores", "add", "hook", "--cart", "webhook", "--url", f"{hook.base_url}/hook",
        "--secret", f"secret={WEBHOOK_SECRET}")
    rows = "".join(f"{n},2024-05-01,Ann,ann@example.com,12345,SKU-{n},Thing,1\n" for n in (5001, 5002, 5003))
    csv = write(tmp_path / "more.csv",
                "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n" + rows)
    cli("orders", "import", csv, "--store", "hook")
    for order in ("1001", "1002", "5001", "5002", "5003"):
        cli("ship", order)
    cli("stack", "run", code=3)  # web's two records stay, to be retried


def _history(rows: list[tuple[float, str]]) -> None:
    conn = sqlite3.connect(os.environ["STATUSCTL_DB"])
    with conn:
        conn.executemany(
            "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, status, reason) "
            "VALUES (?, ?, 'web', 'web', '1001', 1, ?, ?, ?)",
            [(at, f"su_{i}", outcome, 503 if outcome != "ok" else 200, f"reason {i}" if outcome != "ok" else None)
             for i, (at, outcome) in enumerate(rows)],
        )
    conn.close()


def _text(renderable: object, width: int = 100) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_one_frame_shows_controllers_counts_rate_and_errors(tmp_path: Path, hook: FakeServer):
    _shop_with_traffic(tmp_path, hook)
    conn = sqlite3.connect(os.environ["STATUSCTL_DB"])
    with conn:  # a controller with a fresh heartbeat, as `stack run --watch` registers one
        conn.execute("INSERT INTO controllers (id, pid, host, started, heartbeat, mode, sent) "
                     "VALUES ('c1', 4242, 'box', ?, ?, 'watch', 3)", (time.time() - 60, time.time()))
    conn.close()
    frame = _text(render(snapshot(open_db()), "shop.db", interval=1.0))
    lines = frame.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "statusctl stack top" in lines[0] and "shop.db" in lines[0] and "q or Ctrl-C to leave" in lines[0]
    assert "Controllers: 1 running" in frame and "pid 4242 on box (watch, sent 3" in frame
    web = next(line.split() for line in lines if line.strip().startswith("web "))
    assert web[:6] == ["web", "2", "0", "0", "2", "0"]  # queued, due, sending, retrying, failed
    assert not any(line.strip().startswith("hook ") for line in lines)  # delivered: off the stack
    assert "3 sent, 2 errors" in frame
    assert "█" in frame and "-5m" in frame and "now" in frame
    assert "Last errors" in frame and "retry (try 1)" in frame and "network error" in frame
    assert hook.requests and len(hook.requests) == 3


def test_stack_top_once_from_the_command_line_only_reads(tmp_path: Path, hook: FakeServer):
    _shop_with_traffic(tmp_path, hook)
    before = dump()
    out = cli("stack", "top", "--once", env={"COLUMNS": "90"}).stdout
    assert dump() == before
    assert "No controller is running." in out and "web" in out and "Sent per second" in out
    assert "q or Ctrl-C" not in out  # one frame: nothing to leave
    assert max(len(line) for line in out.splitlines()) <= 90


def test_an_empty_stack():
    cli("init")
    out = cli("stack", "top", "--once").stdout
    assert "The stack is empty." in out and "No errors in the history." in out and "0 sent, 0 errors" in out


def test_send_rate_counts_ok_answers_per_bucket_inside_the_window():
    cli("init")
    now = 1_700_000_000.0
    _history([(now - 1, "ok"), (now - 2, "ok"), (now - 9.5, "retry"), (now - 15, "ok"), (now - 299, "failed"),
              (now - 301, "ok"), (now + 1, "ok"), (now - 3, "dropped")])
    rate = send_rate(open_db(), now=now, window=300, bucket=10)
    assert len(rate.sent) == 30
    assert rate.sent[-1] == 2 and rate.errors[-1] == 1  # dropped is the operator's doing, not an error
    assert rate.sent[-2] == 1 and rate.errors[0] == 1
    assert rate.total_sent == 3 and rate.total_errors == 2
    assert rate.per_second[-1] == pytest.approx(0.2)


def test_last_errors_newest_first_with_their_reason():
    cli("init")
    now = time.time()
    _history([(now - 30, "retry"), (now - 20, "ok"), (now - 10, "failed"), (now - 5, "dropped")])
    errors = last_errors(open_db(), limit=5)
    assert [(e["outcome"], e["reason"]) for e in errors] == [("failed", "reason 2"), ("retry", "reason 0")]


def test_bars_scale_to_the_peak():
    assert bars([0, 1, 2, 4], rows=2) == ["   █", " ▄██"]
    assert bars([0, 0], rows=1) == ["  "]
    assert bars([], rows=2) == ["", ""]


def test_the_cli_modules_do_not_import_rich():
    code = ("import sys, statusctl.cli.main, statusctl.cli.stack, statusctl.cli.setup, statusctl.cli.top; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'httpx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_last_errors_show_a_send_that_was_no_attempt_as_not_counted(db_file: Path):
    """A network failure while the store is paused is written as a retry that counts no attempt:
    not as "retry (try 1)" beside the record's real first try."""
    from statusctl.storage import health, stack
    from statusctl.storage.db import Database

    from .stackhelpers import fill, setup_db

    setup_db(db_file, {"web": "http://127.0.0.1:9/hooks/status"})
    fill(db_file, records=2, orders=2, store="web")
    db = Database.open(db_file)
    now = time.time()
    try:
        with db.tx() as conn:
            counted, paused = stack.claim(conn, "A", 2, 120.0, now=now)

        def fails(c: stack.Claimed) -> None:
            with db.tx() as conn:
                stack.settle(conn, [stack.Outcome(c, "retry", reason="timed out (ConnectTimeout)", transport=True)],
                             "A", now=now, max_attempts=8, schedule=(60.0,))

        fails(counted)
        with db.tx() as conn:
            for _ in range(health.BREAKER_FAILURES):
                health.note_transport_failure(conn, "web", "timed out (ConnectTimeout)", now=now, schedule=(60.0,))
        fails(paused)
        errors = last_errors(db)
        frame = _text(render(snapshot(db), "shop.db", interval=1.0), width=120)
    finally:
        db.close()
    assert [(e["uid"], e["counted"]) for e in errors] == [(paused.uid, False), (counted.uid, True)]
    rows = [line for line in frame.splitlines() if "ConnectTimeout" in line and "O0000" in line]
    assert len(rows) == 2 and "not counted" in rows[0] and "retry (try 1)" in rows[1], frame
