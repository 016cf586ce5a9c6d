"""`statusctl db copy --to URL`: a real shop's SQLite database into a fresh PostgreSQL database.

The source is built through the CLI (stores, orders, ships, a delivered, a retried and a
failed record, records left queued); every copied table is then compared row by row, the
identities checked to continue past the copied ids, and every refusal checked to write nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from statusctl.storage.copy import IDENTITIES, TABLES, Progress

from .carts.fakeserver import Answer, FakeServer
from .helpers import EXAMPLES, cli
from .pgcluster import PASSWORD_ROLE, Cluster
from .stackhelpers import SECRET, STORE, Hook, hook_url, serve

psycopg = pytest.importorskip("psycopg")


# -- fixtures and readers -------------------------------------------------------------


@pytest.fixture
def target(pg_server: Cluster) -> str:
    """A new empty PostgreSQL database for this test: its URL (the superuser, no password)."""
    return pg_server.url(pg_server.create_database("copy"))


@pytest.fixture
def hooked() -> Iterator[tuple[Hook, FakeServer]]:
    with serve() as served:
        yield served


def pg_rows(url: str, table: str, order: str, cols: list[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")]


def pg_one(url: str, sql: str) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]  # type: ignore[index]


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def sqlite_rows(path: Path, table: str, order: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {', '.join(columns(path, table))} FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


def sql(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def statusctl_tables(url: str) -> int:
    """How many tables the target holds (0: as createdb left it)."""
    return int(pg_one(url, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"))


def doc(*args: Any, code: int = 0) -> Any:
    """The one JSON document a command printed."""
    return json.loads(cli(*args, code=code).stdout)


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    """A copy that must be refused: exit 1, nothing on stdout, one sentence on stderr; that sentence."""
    result = cli("db", "copy", *args, code=1, env=env)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- the shop --------------------------------------------------------------------------


def build_shop(db_file: Path, hook: Hook, server: FakeServer) -> dict[str, list[str]]:
    """Through the CLI: a store, orders, ships; one record delivered after a retry, one failed, some left queued.

    Returns the uids left on the stack per order, in queue order.
    """
    cli("init")
    cli("config", "set", "UseStatusUpdates", "true")
    cli("config", "set", "StackRetrySchedule", "0.01,0.01")
    cli("labels", "add", "Waiting For Stock", "--scope", "both")
    cli("stores", "add", STORE, "--cart", "webhook", "--url", hook_url(server), "--secret", f"secret={SECRET}")
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", STORE)
    cli("ship", "1001", "--tracking", "1Z999", "--carrier", "UPS")
    cli("ship", "1002")
    cli("ship", "1003", "--item", "MUG-1")
    first = {r["order"]: r["id"] for r in doc("stack", "list", "--json")}
    hook.fail(first["1001"], Answer(500, "busy"))
    hook.fail(first["1002"], Answer(410, "gone"))
    assert doc("stack", "run", "--json", code=3)["stores"][STORE]["failed"] == 1
    cli("ship", "1003")  # behind nothing: its order's first record was delivered
    cli("ship", "1005", "--tracking", "TRK-5")
    cli("cancel", "1006")
    cli("fire", "order-approved", "1002")  # queued behind 1002's failed record
    # A controller that stopped long ago without unregistering (a power cut): it is not copied.
    sql(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES ('old', 1, 'till', ?, ?, 'once')",
        (time.time() - 7200, time.time() - 3600))
    left: dict[str, list[str]] = {}
    for order, uid in sql(db_file, "SELECT order_number, uid FROM stack ORDER BY seq"):
        left.setdefault(order, []).append(uid)
    return left


@pytest.fixture
def shop(db_file: Path, hooked: tuple[Hook, FakeServer]) -> dict[str, list[str]]:
    hook, server = hooked
    return build_shop(db_file, hook, server)


# -- the copy --------------------------------------------------------------------------


def test_every_table_is_copied_row_by_row_with_ids_seqs_states_and_history(db_file, shop, target):
    report = doc("db", "copy", "--to", target, "--json")
    assert report["target"] == target and report["source"] == str(db_file) and report["created_schema"]
    assert list(report["tables"]) == [t for t, _ in TABLES]
    for table, order in TABLES:
        rows = sqlite_rows(db_file, table, order)
        assert report["tables"][table] == len(rows), table
        assert pg_rows(target, table, order, columns(db_file, table)) == rows, table
    # What the shop holds is really there (not two empty tables compared).
    assert report["tables"]["stack"] == sum(len(v) for v in shop.values()) >= 5
    assert min(report["tables"][t] for t in ("orders", "items", "packages", "label_history", "stack_history")) > 0
    states = dict(pg_rows(target, "stack", "seq", ["uid", "state"]))
    assert list(states.values()).count("failed") == 1
    assert pg_one(target, "SELECT COUNT(*) FROM controllers") == 0
    assert pg_one(target, "SELECT string_agg(name, ',' ORDER BY name) FROM migrations") == ",".join(
        r[0] for r in sql(db_file, "SELECT name FROM migrations ORDER BY name"))
    assert sql(db_file, "SELECT COUNT(*) FROM controllers") == [(1,)]  # the source is untouched


def test_identities_continue_past_the_copied_ids(db_file, shop, target):
    newest = shop["1002"][-1]
    cli("stack", "drop", newest, "--yes")
    # The stack's seq continues past every seq SQLite ever gave, the dropped newest record's too.
    ever = sql(db_file, "SELECT seq FROM sqlite_sequence WHERE name = 'stack'")[0][0]
    assert ever > sql(db_file, "SELECT MAX(seq) FROM stack")[0][0]
    report = doc("db", "copy", "--to", target, "--json")
    for table, col in IDENTITIES.items():
        top = sql(db_file, f"SELECT COALESCE(MAX({col}), 0) FROM {table}")[0][0]
        expected = max(top, ever) + 1 if table == "stack" else top + 1
        assert report["next_ids"][f"{table}.{col}"] == expected, table
        assert pg_one(target, f"SELECT nextval(pg_get_serial_sequence('{table}', '{col}'))") == expected, table


def test_people_get_a_table_of_rows_per_table(db_file, shop, target):
    out = cli("db", "copy", "--to", target).stdout
    assert f"Copied {db_file} to {target}:" in out
    cells = {tuple(c.strip() for c in line.split("│")[1:3]) for line in out.splitlines() if line.count("│") == 3}
    for table, order in TABLES:
        assert (table, str(len(sqlite_rows(db_file, table, order)))) in cells, table
    assert "in one transaction" in out and f"STATUSCTL_DB={target}" in out


@pytest.mark.xfail(strict=True, reason="the stack's SQL on PostgreSQL (branch stack-pg) is not on main yet: "
                   "remove this mark when it is")
def test_the_copy_delivers_what_was_left_in_order(db_file, shop, hooked, target, monkeypatch):
    hook, _ = hooked
    cli("db", "copy", "--to", target)
    monkeypatch.setenv("STATUSCTL_DB", target)
    status = doc("stack", "status", "--json")
    assert [(s["store"], s["queued"], s["failed"]) for s in status["stores"]] == [
        (STORE, sum(len(v) for v in shop.values()), 1)]
    cli("stack", "retry", "--failed")
    assert doc("stack", "run", "--json")["stores"][STORE]["failed"] == 0
    for order, uids in shop.items():
        assert hook.accepted_order(order)[-len(uids):] == uids, order
    assert hook.twice() == {}
    assert doc("stack", "status", "--json")["stores"] == []


# -- what a copy refuses, writing nothing ------------------------------------------------


@pytest.mark.parametrize("to", ["https://db.example/x", "mysql://app:hunter2@db/x", "/tmp/other.db", "sqlite:x.db"])
def test_a_target_that_is_not_a_postgresql_url(db_file, to):
    err = refused("--to", to)
    assert "is not a PostgreSQL URL" in err and "hunter2" not in err


def test_a_target_that_holds_data_is_refused_and_kept(db_file, shop, target):
    cli("db", "copy", "--to", target)
    before = {t: pg_one(target, f"SELECT COUNT(*) FROM {t}") for t, _ in TABLES}
    cli("ship", "1004")
    err = refused("--to", target)
    assert "already holds statusctl data (rows in stores, orders" in err
    assert {t: pg_one(target, f"SELECT COUNT(*) FROM {t}") for t, _ in TABLES} == before


def test_a_target_with_a_table_of_another_application_is_refused(db_file, shop, target):
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    err = refused("--to", target)
    assert "already holds a table named orders that is not statusctl's" in err
    assert statusctl_tables(target) == 1


def test_a_target_where_only_init_ran_gets_its_defaults_replaced(db_file, shop, target):
    from statusctl.storage.postgres import PostgresDatabase

    PostgresDatabase.open(target, create=True).close()  # init's schema; its defaults are written below
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO settings (name, value) VALUES ('UseStatusUpdates', 'false'), ('Target', 'x')")
        conn.execute("INSERT INTO labels (name, scope, builtin) VALUES ('Order Shipped', 'order', 1)")
    report = doc("db", "copy", "--to", target, "--json")
    assert not report["created_schema"]
    for table in ("settings", "labels", "meta", "label_maps", "events"):
        order = dict(TABLES)[table]
        assert pg_rows(target, table, order, columns(db_file, table)) == sqlite_rows(db_file, table, order), table


def test_a_target_with_a_controller_registered_is_refused(db_file, shop, target):
    from statusctl.storage.postgres import PostgresDatabase

    PostgresDatabase.open(target, create=True).close()
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES ('c', 1, 'h', 0, 0, 'x')")
    assert "rows in controllers" in refused("--to", target)
    assert pg_one(target, "SELECT COUNT(*) FROM stack") == 0


def test_a_live_controller_on_the_source_is_refused(db_file, shop, target):
    sql(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) "
        "VALUES ('live', 4242, 'warehouse-1', ?, ?, 'watch')", (time.time() - 60, time.time() - 1))
    err = refused("--to", target)
    assert "A controller is running on" in err and "pid 4242 on warehouse-1" in err
    assert statusctl_tables(target) == 0


def test_a_record_under_a_live_lease_is_refused(db_file, shop, target):
    sql(db_file, "UPDATE stack SET lease_owner = 'gone', lease_until = ? WHERE seq = (SELECT MIN(seq) FROM stack)",
        (time.time() + 30,))
    err = refused("--to", target)
    assert "1 record(s) on" in err and "still leased" in err and "try again in" in err
    assert statusctl_tables(target) == 0


def test_a_source_behind_the_latest_migration_is_refused_and_not_migrated(tmp_path, target, monkeypatch):
    from statusctl.storage.db import Database, _statements
    from statusctl.storage.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    db = Database.open(path, create=True, migrate=False)
    db.conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    with db.tx() as conn:
        for name, script in MIGRATIONS[:3]:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    db.close()
    monkeypatch.setenv("STATUSCTL_DB", str(path))
    err = refused("--to", target)
    assert "is not at the latest migration (0004_fair_stack is missing)" in err and "statusctl init" in err
    assert sql(path, "SELECT COUNT(*) FROM migrations") == [(3,)]
    assert statusctl_tables(target) == 0


def test_without_psycopg_the_copy_says_what_to_install(db_file, shop, target, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as when it is not installed
    assert "pip install 'statusctl[postgres]'" in refused("--to", target)
    monkeypatch.undo()
    assert statusctl_tables(target) == 0


# -- passwords and failures midway ------------------------------------------------------


def test_the_password_is_never_shown(db_file, shop, pg_server):
    name = pg_server.create_database("copypw")
    pg_server.sql(f'ALTER DATABASE "{name}" OWNER TO {PASSWORD_ROLE}')
    url = pg_server.url(name, PASSWORD_ROLE, pg_server.password)
    secrets = (pg_server.password, quote(pg_server.password, safe=""))
    outputs = [cli("db", "copy", "--to", url).output, cli("db", "copy", "--to", url, code=1).output,
               cli("db", "copy", "--to", pg_server.url(name, PASSWORD_ROLE, "wrong-" + pg_server.password),
                   code=1).output]
    for out in outputs:
        assert not any(s in out for s in secrets), out
        assert f"{PASSWORD_ROLE}:••••••@" in out, out
    assert pg_one(pg_server.url(name), "SELECT COUNT(*) FROM stack") == len(sqlite_rows(db_file, "stack", "seq"))


def fill_stack(path: Path, records: int) -> None:
    """`records` more records on the source's stack, written straight into its tables (fast)."""
    now = time.time()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
            "VALUES (?, ?, ?, 'bulk', 'bulk', '{}', ?, ?)",
            ((f"su_bulk{i:015d}", 10_000_000 + i, f"B{i}", now, now) for i in range(records)))
        conn.execute("INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, queued, records) "
                     "SELECT order_id, seq, destination, state, next_attempt, queued, 1 FROM stack "
                     "WHERE destination = 'bulk'")
        conn.execute("INSERT INTO stack_counts (destination, records) VALUES ('bulk', ?)", (records,))
    conn.close()


_KILLED_MIDWAY = """
import os, signal, sys
from pathlib import Path
from statusctl.storage.copy import Progress, copy_database
from statusctl.storage.db import Database
from statusctl.storage.postgres import PostgresDatabase

class Killer(Progress):
    def advance(self, table, rows):
        if table == "stack":
            print("midway", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

copy_database(Database.open(Path(sys.argv[1]), create=False, migrate=False),
              PostgresDatabase.open(sys.argv[2], create=True, migrate=False), progress=Killer())
"""


def test_kill_9_midway_leaves_the_target_as_it_was(db_file, shop, target):
    fill_stack(db_file, 20_000)
    done = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, str(db_file), target], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == -9 and done.stdout == "midway\n", done.stderr
    # The server ends the dead client's transaction: no table, as createdb left it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pg_one(target, "SELECT COUNT(*) FROM pg_stat_activity "
                                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"):
        time.sleep(0.05)
    assert statusctl_tables(target) == 0
    assert doc("db", "copy", "--to", target, "--json")["tables"]["stack"] == len(
        sqlite_rows(db_file, "stack", "seq"))


class _ServerGone(Progress):
    """Ends the copy's server session (as a restart or a DBA would) once stack rows are on their way."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.done = False

    def advance(self, table: str, rows: int) -> None:
        if table == "stack" and not self.done:
            self.done = True
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                             "'statusctl' AND datname = current_database()")


def test_the_server_gone_midway_is_one_sentence_and_writes_nothing(db_file, shop, target, caplog):
    from statusctl.domain.errors import DatabaseError
    from statusctl.storage.copy import copy_database
    from statusctl.storage.db import Database
    from statusctl.storage.postgres import PostgresDatabase

    fill_stack(db_file, 20_000)
    source = Database.open(db_file, create=False, migrate=False)
    copy_to = PostgresDatabase.open(target, create=True, migrate=False)
    gone = _ServerGone(target)
    try:
        with pytest.raises(DatabaseError) as err:
            copy_database(source, copy_to, progress=gone)
    finally:
        copy_to.close()
        source.close()
    assert gone.done and "\n" not in str(err.value) and target in str(err.value)
    assert "was lost" in str(err.value)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []  # nothing more on stderr
    assert statusctl_tables(target) == 0


def test_a_row_postgresql_refuses_is_named_and_nothing_is_copied(db_file, shop, target):
    sql(db_file, "UPDATE orders SET customer_name = ? WHERE number = '1004'", ("nul\x00byte",))
    err = refused("--to", target)
    assert "PostgreSQL refused a row of orders" in err and "nothing was copied" in err
    assert statusctl_tables(target) == 0


def test_progress_hears_every_row(db_file, shop, target):
    from statusctl.storage.copy import copy_database
    from statusctl.storage.db import Database
    from statusctl.storage.postgres import PostgresDatabase

    class Count(Progress):
        def begin(self, counts: dict[str, int]) -> None:
            self.counts, self.seen = counts, dict.fromkeys(counts, 0)

        def advance(self, table: str, rows: int) -> None:
            self.seen[table] += rows

    heard = Count()
    fill_stack(db_file, 12_000)  # more than one batch
    source = Database.open(db_file, create=False, migrate=False)
    copy_to = PostgresDatabase.open(target, create=True, migrate=False)
    try:
        report = copy_database(source, copy_to, progress=heard)
    finally:
        copy_to.close()
        source.close()
    assert heard.seen == heard.counts == report.tables


@pytest.mark.slow
def test_a_million_records_copy_in_reasonable_time(db_file, target):
    cli("init")
    fill_stack(db_file, 1_000_000)
    start = time.monotonic()
    report = doc("db", "copy", "--to", target, "--json")
    took = time.monotonic() - start
    assert report["tables"]["stack"] == 1_000_000 and report["tables"]["stack_heads"] == 1_000_000
    assert took < 120, f"{took:.1f} s"
    print(json.dumps({"stack_rows": 1_000_000, "seconds": round(took, 1)}))


def test_a_source_that_is_a_postgresql_url_is_refused(db_file, shop, target, pg_server):
    other = pg_server.url(pg_server.create_database("src"))
    err = refused("--to", target, env={"STATUSCTL_DB": other})
    assert "works on a SQLite database file" in err
    assert statusctl_tables(target) == 0


def test_a_source_written_by_a_newer_statusctl_is_refused(db_file, shop, target):
    sql(db_file, "INSERT INTO migrations (name, applied) VALUES ('0099_from_the_future', 0)")
    assert "was written by a newer statusctl (migration 0099_from_the_future)" in refused("--to", target)
    assert statusctl_tables(target) == 0


def test_a_progress_bar_only_on_a_terminal(db_file, shop, pg_server):
    import pty

    piped = cli("db", "copy", "--to", pg_server.url(pg_server.create_database("bar"))).stdout
    assert "Copying" not in piped, piped
    fill_stack(db_file, 30_000)
    leader, follower = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "statusctl", "db", "copy", "--to",
                           pg_server.url(pg_server.create_database("bar"))],
                          stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, timeout=120,
                          env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(Path(__file__).parents[1])})
    os.close(follower)
    shown = b""
    with __import__("contextlib").suppress(OSError):
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert done.returncode == 0, done.stderr
    assert b"Copying stack" in shown and b"Copied " in shown
