"""`statusctl stack status|list|history|retry|drop|run` as an operator and a cron job see them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .carts.fakeserver import Answer, FakeServer
from .stackhelpers import (
    STORE,
    Hook,
    cli,
    fill,
    history_rows,
    hook_url,
    query,
    serve,
    setup_db,
    stack_rows,
    statusctl_cmd,
)


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # tables on one line each, so rows can be read back


@pytest.fixture
def hooked(db_file: Path) -> Iterator[tuple[Hook, FakeServer]]:
    with serve() as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        yield hook, server


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


# -- stack status --------------------------------------------------------------------


def test_status_of_an_empty_stack(db_file):
    setup_db(db_file, {})
    r = cli("stack", "status")
    assert r.code == 0
    assert "No controller is running." in r.stdout and "The stack is empty." in r.stdout
    doc = cli("stack", "status", "--json").json()
    assert (doc["controllers"], doc["stores"], doc["problems"]) == ([], [], [])
    assert cli("stack", "status", "--check").code == 0


def test_status_per_store_and_check_exits_3_on_failed_records(db_file, hooked):
    hook, _ = hooked
    orders = fill(db_file, records=4, orders=2)
    hook.fail(orders["O00000"][0], Answer(404, "unknown"))
    assert cli("stack", "run", "--json").code == 3
    doc = cli("stack", "status", "--json").json()
    (store,) = doc["stores"]
    assert (store["store"], store["queued"], store["failed"], store["retrying"], store["sending"]) == (STORE, 2, 1, 0, 0)
    assert store["oldest_age"] >= 0
    assert doc["problems"] == [f"{STORE}: 1 failed"]
    text = cli("stack", "status")
    for column in ("store", "queued", "due", "retrying", "failed", "oldest"):
        assert column in text.stdout
    assert "Problem: hook: 1 failed" in text.stdout
    check = cli("stack", "status", "--check")
    assert check.code == 3
    assert check.stderr.startswith("Check failed: hook: 1 failed")
    checked_json = cli("stack", "status", "--check", "--json")
    assert checked_json.code == 3 and checked_json.json()["problems"] == [f"{STORE}: 1 failed"]
    assert checked_json.stderr == "", "--json prints one document and nothing else"


def test_check_joins_its_problems_without_a_double_full_stop(db_file, monkeypatch):
    from statusctl.core.stores import add_store
    from statusctl.storage.db import Database

    setup_db(db_file, {})
    db = Database.open(db_file)
    add_store(db, STORE, "webhook", "http://127.0.0.1:9/hook", [], ["secret=HOOK_SECRET_NOT_HERE"], [])
    db.close()
    fill(db_file, records=1, orders=1)
    monkeypatch.delenv("HOOK_SECRET_NOT_HERE", raising=False)
    assert cli("stack", "run", "--json").code == 3  # waits, misconfigured: the variable is not set here
    check = cli("stack", "status", "--check")
    assert check.code == 3 and "HOOK_SECRET_NOT_HERE" in check.stderr
    assert ".." not in check.stderr and check.stderr.rstrip().endswith("is not set."), check.stderr


def test_check_exits_3_when_the_oldest_record_is_older_than_StackAlertAge(db_file):
    setup_db(db_file, {STORE: "http://127.0.0.1:9/hooks/status"}, settings={"StackAlertAge": "600"})
    orders = fill(db_file, records=2, orders=2)
    assert cli("stack", "status", "--check").code == 0
    query(db_file, "UPDATE stack SET queued = queued - 900 WHERE uid = ?", (orders["O00001"][0],))
    r = cli("stack", "status", "--check")
    assert r.code == 3
    assert "oldest record waits 15m" in r.stderr and "StackAlertAge 10m00s" in r.stderr


def test_status_shows_live_and_gone_controllers(db_file):
    setup_db(db_file, {})
    now = time.time()
    query(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES "
                   "('a', 4242, 'shop-server', ?, ?, 'watch')", (now - 50, now - 1))
    query(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES "
                   "('b', 5151, 'old-box', ?, ?, 'run')", (now - 7200, now - 3600))
    r = cli("stack", "status")
    assert "1 controller(s) running." in r.stdout
    live, gone = line_with(r.stdout, "4242"), line_with(r.stdout, "5151")
    assert "shop-server" in live and "watch" in live and "alive" in live
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(now - 50)) in live  # started
    assert "old-box" in gone and "gone" in gone
    doc = cli("stack", "status", "--json").json()
    assert {c["pid"]: c["alive"] for c in doc["controllers"]} == {4242: True, 5151: False}
    assert {"pid", "host", "started", "heartbeat", "mode", "alive"} <= set(doc["controllers"][0])


# -- stack list / history -------------------------------------------------------------


def test_list_shows_attempts_next_attempt_and_last_error(db_file, hooked):
    hook, _ = hooked
    orders = fill(db_file, records=4, orders=2)
    waiting = orders["O00000"][0]
    hook.fail(waiting, Answer(503, "down for maintenance", {"Retry-After": "600"}))
    assert cli("stack", "run", "--json").code == 3
    rows = cli("stack", "list", "--json").json()
    assert [r["id"] for r in rows] == orders["O00000"]
    first = rows[0]
    assert (first["state"], first["attempts"], first["last_status"]) == ("retrying", 1, 503)
    assert first["next_attempt"] > time.time() + 500
    assert first["last_error"] == "HTTP 503 Service Unavailable"
    assert first["last_answer"] == "down for maintenance"
    text = cli("stack", "list").stdout
    line = line_with(text, "│ " + waiting[:11])  # the table shows short ids
    assert "retrying" in line
    assert time.strftime("%Y-%m-%d", time.localtime(first["next_attempt"])) in line
    # The error has a whole line of its own under the table.
    assert f"{waiting[:11]}  [503] HTTP 503 Service Unavailable — answer: down for maintenance" in text
    held = line_with(text, "│ " + orders["O00000"][1][:11])
    assert "held" in held and "now" in held
    assert cli("stack", "list", "--order", "O00001", "--json").json() == []
    r = cli("stack", "list", "--store", "elsewhere")  # a typo is refused, not an empty list
    assert (r.code, r.stdout) == (1, "") and "Unknown store 'elsewhere'" in r.stderr
    assert cli("stack", "list", "--failed", "--json").json() == []


def test_history_shows_every_attempt(db_file, hooked):
    hook, _ = hooked
    orders = fill(db_file, records=2, orders=2)
    uid = orders["O00000"][0]
    hook.fail(uid, Answer(500, "one"), Answer(429, "two"))
    assert cli("stack", "run").code == 0
    rows = cli("stack", "history", "--order", "O00000", "--json").json()
    assert [(h["uid"], h["attempt"], h["outcome"], h["status"]) for h in rows] == [
        (uid, 1, "retry", 500), (uid, 2, "retry", 429), (uid, 3, "ok", 204)]
    assert [h["answer"] for h in rows[:2]] == ["one", "two"]
    assert all(h["duration_ms"] >= 0 and h["controller"] for h in rows)
    text = cli("stack", "history", "--order", "O00000").stdout
    assert text.count(uid[:11]) == 3
    assert "#1  HTTP 500 Internal Server Error — one" in text
    assert len(cli("stack", "history", "--since", "1h", "--json").json()) == 4
    first, reach = cli("stack", "history", "--since", "2999-01-01").stdout.strip().splitlines()
    assert first == "No attempts recorded."
    # How far back the history goes, and why not further (issue 12: retention).
    assert reach.startswith("The history reaches back to ") and "StackHistoryDays (90 days)" in reach
    bad = cli("stack", "history", "--since", "yesterday-ish")
    assert bad.code == 1 and "--since" in bad.stderr


# -- stack retry / drop ----------------------------------------------------------------


@pytest.fixture
def failed(db_file, hooked) -> list[str]:
    hook, _ = hooked
    orders = fill(db_file, records=3, orders=3)
    uids = [orders[n][0] for n in sorted(orders)]
    for uid in uids[:2]:
        hook.fail(uid, Answer(410, "gone"))
    assert cli("stack", "run", "--json").code == 3
    return uids[:2]


def test_list_shows_no_next_attempt_for_a_failed_record(db_file, failed):
    text = cli("stack", "list", "--failed").stdout
    line = line_with(text, "│ " + failed[0][:11])
    assert "failed" in line and "now" not in line
    assert "[410]" in line_with(text, failed[0][:11] + "  ")


def test_retry_and_drop_take_the_short_id_the_tables_show(db_file, failed):
    short = failed[0][:11]
    assert cli("stack", "retry", short).stdout.strip() == "1 record(s) will be sent on the next run."
    assert cli("stack", "drop", short, "--yes").stdout.strip() == "Dropped 1 record(s)."
    assert failed[0] not in [r["id"] for r in cli("stack", "list", "--json").json()]
    r = cli("stack", "drop", "su_", "--yes")  # too short to be a short id
    assert r.code == 1 and "No record" in r.stderr


def test_retry_by_id_and_failed(db_file, failed):
    r = cli("stack", "retry", failed[0])
    assert (r.code, r.stdout.strip()) == (0, "1 record(s) will be sent on the next run.")
    rows = {x["id"]: x for x in cli("stack", "list", "--json").json()}
    assert (rows[failed[0]]["state"], rows[failed[0]]["attempts"]) == ("queued", 0)
    assert rows[failed[1]]["state"] == "failed"
    assert cli("stack", "retry", "--failed").stdout.strip() == "1 record(s) will be sent on the next run."
    r = cli("stack", "run", "--json")
    assert r.code == 0 and r.json()["stores"][STORE]["sent"] == 2


def test_retry_refuses_without_ids_and_names_unknown_ids(db_file, failed):
    for command in ("retry", "drop"):  # naming nothing is a usage error, not "nothing to do"
        r = cli("stack", command)
        assert r.code == 2 and "Name the records" in r.stderr and "--failed" in r.stderr and r.stdout == ""
    r = cli("stack", "retry", "su_nosuchrecord")
    assert r.code == 1 and "su_nosuchrecord" in r.stderr and "stack list" in r.stderr
    assert "Traceback" not in r.stderr


def test_drop_asks_unless_yes(db_file, failed):
    r = cli("stack", "drop", "--failed")
    assert r.code == 1 and "--yes" in r.stderr, "without a terminal it must refuse, not drop"
    assert len(stack_rows(db_file)) == 2
    r = cli("stack", "drop", failed[0], "--yes")
    assert (r.code, r.stdout.strip()) == (0, "Dropped 1 record(s).")
    r = cli("stack", "drop", "--failed", "-y")
    assert r.stdout.strip() == "Dropped 1 record(s)."
    assert stack_rows(db_file) == []
    dropped = [h for h in history_rows(db_file) if h["outcome"] == "dropped"]
    assert sorted(h["uid"] for h in dropped) == sorted(failed)
    assert cli("stack", "drop", "--failed").stdout.strip() == "Nothing to drop."


@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, 2), ("y", 0, 0)])
def test_drop_confirms_on_a_terminal(db_file, failed, answer, code, left):
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen(statusctl_cmd(db_file, "stack", "drop", "--failed"), stdin=follower,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(leader, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == code, err
    assert "Drop 2 record(s)? They will never be sent." in out
    assert len(stack_rows(db_file)) == left


# -- stack run ---------------------------------------------------------------------------


def test_run_prints_a_table_per_store_and_exits_3_on_failures(db_file):
    with serve() as (hook, a), serve() as (other, b):
        setup_db(db_file, {"alpha": hook_url(a), "beta": hook_url(b)})
        fill(db_file, records=3, orders=3, store="alpha", prefix="A")
        bad = fill(db_file, records=2, orders=1, store="beta", prefix="B")
        other.fail(bad["B00000"][0], Answer(404, "no"))
        r = cli("stack", "run")
    assert r.code == 3
    assert "Stack run" in r.stdout
    header = line_with(r.stdout, "store")
    assert [w for w in header.replace("┃", " ").split()] == ["store", "sent", "retrying", "failed", "left"]
    assert line_with(r.stdout, "alpha").replace("│", " ").split() == ["alpha", "3", "0", "0", "0"]
    assert line_with(r.stdout, "beta").replace("│", " ").split() == ["beta", "0", "0", "1", "2"]
    assert "1 failed record(s) on the stack: `statusctl stack list --failed` shows why." in r.stdout


def test_run_json_is_one_document(db_file, hooked):
    fill(db_file, records=4, orders=2)
    r = cli("stack", "run", "--json")
    assert r.code == 0 and r.stderr == ""
    assert r.json() == {
        "stores": {STORE: {"sent": 4, "retrying": 0, "failed": 0, "left": 0}},
        "sent": 4, "attempts": 4, "failed_on_stack": 0, "interrupted": False, "misconfigured": {}, "paused": {},
        "ok": True,
    }


def test_run_with_nothing_due(db_file, hooked):
    r = cli("stack", "run")
    assert (r.code, r.stdout.strip()) == (0, "Nothing was due.")
    assert cli("stack", "run", "--json").json()["stores"] == {}


def test_run_limit_sends_at_most_n(db_file, hooked):
    hook, _ = hooked
    fill(db_file, records=10, orders=10)
    r = cli("stack", "run", "--json", "--limit", "3")
    assert r.code == 0
    assert r.json()["stores"][STORE] == {"sent": 3, "retrying": 0, "failed": 0, "left": 7}
    assert len(hook.delivered()) == 3
    assert cli("stack", "run", "--limit", "0").code == 2


def test_run_store_sends_only_that_stores_records(db_file):
    with serve() as (a_hook, a), serve() as (b_hook, b), serve() as (c_hook, c):
        setup_db(db_file, {"alpha": hook_url(a), "beta": hook_url(b), "gamma": hook_url(c)})
        fill(db_file, records=2, orders=2, store="alpha", prefix="A")
        fill(db_file, records=2, orders=2, store="beta", prefix="B")
        fill(db_file, records=2, orders=2, store="gamma", prefix="C")
        r = cli("stack", "run", "--json", "--store", "alpha", "--store", "gamma")
    assert r.code == 0
    assert set(r.json()["stores"]) == {"alpha", "gamma"}
    assert (len(a_hook.delivered()), len(b_hook.delivered()), len(c_hook.delivered())) == (2, 0, 2)
    assert {row["destination"] for row in stack_rows(db_file)} == {"beta"}


def test_run_with_an_unknown_store_is_an_error_not_a_quiet_success(db_file, hooked):
    fill(db_file, records=1, orders=1)
    r = cli("stack", "run", "--store", "hooook")
    assert r.code == 1
    assert "hooook" in r.stderr and "stores list" in r.stderr
    assert len(stack_rows(db_file)) == 1


def test_run_concurrency_is_checked(db_file, hooked):
    assert cli("stack", "run", "--concurrency", "0").code == 2
    assert cli("stack", "run", "--concurrency", "257").code == 2
    fill(db_file, records=3, orders=3)
    assert cli("stack", "run", "--concurrency", "256", "--json").json()["sent"] == 3


def test_history_shows_no_try_number_for_a_send_that_was_no_attempt(db_file):
    # A network failure while its store was paused is written as a retry that counts nothing.
    import sqlite3

    from statusctl.storage.stack import NOT_COUNTED

    with sqlite3.connect(db_file) as conn:
        conn.executemany(
            "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, reason, "
            "controller) VALUES (?, ?, 'web', 'web', ?, 1, 'retry', ?, 'test')",
            [(time.time(), "su_aaaaaaaa0001", "1001", "network error: ConnectError" + NOT_COUNTED),
             (time.time(), "su_bbbbbbbb0002", "1002", "network error: ConnectError")],
        )
    cli("stores", "add", "web", "--cart", "none", "--url", "https://shop.example")
    out = cli("stack", "history").stdout
    row_1001 = next(line for line in out.splitlines() if "1001" in line and "su_aaaaaaaa" in line)
    row_1002 = next(line for line in out.splitlines() if "1002" in line and "su_bbbbbbbb" in line)
    assert "–" in row_1001.split("su_aaaaaaaa")[1].split("retry")[0]
    assert "1" in row_1002.split("su_bbbbbbbb")[1].split("retry")[0]
