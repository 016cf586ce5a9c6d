"""statusctl's PostgreSQL schema against SQLite's: the same migrations, tables, columns, indexes
and triggers, the triggers doing the same thing, and `statusctl init` safe from several machines."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from statusctl.storage.copy import ROWID_TABLES
from statusctl.storage.db import Database
from statusctl.storage.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from statusctl.storage.pgschema import MIGRATIONS
from statusctl.storage.postgres import PostgresDatabase

from ..helpers import ROOT


@pytest.fixture(scope="module")
def pg(pg_url):
    database = PostgresDatabase.open(pg_url, create=True)
    yield database
    database.close()


@pytest.fixture
def sqlite(tmp_path):
    database = Database.open(tmp_path / "schema.db", create=True)
    yield database
    database.close()


def test_the_migrations_have_sqlites_names_in_sqlites_order():
    assert [name for name, _ in MIGRATIONS] == [name for name, _ in SQLITE_MIGRATIONS]


def _sqlite_schema(db: Database) -> dict[str, object]:
    tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")]
    columns = {t: {(c["name"], bool(c["notnull"] or c["pk"]), c["pk"] > 0) for c in db.query(f"PRAGMA table_info({t})")}
               for t in tables}
    for t in ROWID_TABLES:  # SQLite's implicit rowid, a column on PostgreSQL (0006)
        columns[t].add(("rowid", True, False))
    indexes = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    triggers = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return {"columns": columns, "indexes": indexes, "triggers": triggers}


def _pg_schema(db: PostgresDatabase) -> dict[str, object]:
    pk = {(r[0], r[1]) for r in db.query(
        "SELECT k.table_name, k.column_name FROM information_schema.key_column_usage k "
        "JOIN information_schema.table_constraints c USING (constraint_name, table_name) "
        "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = 'public'")}
    columns: dict[str, set[tuple[str, bool, bool]]] = {}
    for r in db.query("SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                      "WHERE table_schema = 'public'"):
        columns.setdefault(r[0], set()).add((r[1], r[2] == "NO", (r[0], r[1]) in pk))
    indexes = {r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                      "AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'")}
    triggers = {r[0] for r in db.query("SELECT DISTINCT trigger_name FROM information_schema.triggers")}
    return {"columns": columns, "indexes": indexes, "triggers": triggers}


def test_tables_columns_keys_indexes_and_triggers_are_sqlites(sqlite, pg):
    assert _pg_schema(pg) == _sqlite_schema(sqlite)


def test_defaults_and_checks_are_sqlites(pg):
    with pg.tx() as conn:
        conn.execute("INSERT INTO stores (name, cart, url, created) VALUES ('s', 'webhook', 'http://x', 'now')")
        row = conn.execute("SELECT secrets, options FROM stores WHERE name = 's'").fetchone()
        assert tuple(row) == ("{}", "{}")
        conn.execute("DELETE FROM stores")
    with pytest.raises(psycopg.errors.CheckViolation), pg.tx() as conn:
        conn.execute("INSERT INTO labels (name, scope) VALUES ('x', 'nowhere')")


def test_label_names_ignore_case_like_sqlites_nocase(pg):
    with pg.tx() as conn:
        conn.execute("INSERT INTO labels (name, scope) VALUES (?, 'item')", ("Packed",))
        conn.execute("INSERT INTO label_maps (label, cart, value) VALUES (?, 'shopify', 'x')", ("PACKED",))
        assert conn.execute("SELECT name FROM labels WHERE name = ?", ("pAcKeD",)).fetchone()[0] == "Packed"
    with pytest.raises(psycopg.errors.UniqueViolation), pg.tx() as conn:
        conn.execute("INSERT INTO labels (name, scope) VALUES (?, 'item')", ("packed",))
    with pg.tx() as conn:
        conn.execute("DELETE FROM labels WHERE name = 'PACKED'")
        assert conn.execute("SELECT count(*) FROM label_maps").fetchone()[0] == 0  # the cascade matched too


# The same statements on both backends; afterwards heads, counts and the config counter must match.
_QUEUE = ("INSERT INTO stack (seq, uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
          "VALUES (?, ?, ?, ?, 's', ?, '{}', 1.0, ?)")
_SCRIPT: list[tuple[str, tuple[object, ...]]] = [
    ("INSERT INTO stores (name, cart, url, created) VALUES ('a', 'webhook', 'u', 'c'), ('b', 'webhook', 'u', 'c')", ()),
    ("UPDATE stores SET url = 'v'", ()),
    *[(_QUEUE, (seq, f"u{seq}", order, f"#{order}", dest, float(seq)))
      for seq, order, dest in [(1, 1, "a"), (2, 1, "a"), (3, 1, "a"), (4, 2, "b"), (5, 2, "b"), (6, 3, "a")]],
    ("INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, queued, records) "
     "VALUES (1, 1, 'a', 'queued', 1.0, 1.0, 3), (2, 4, 'b', 'queued', 4.0, 1.0, 2), (3, 6, 'a', 'queued', 6.0, 1.0, 1)",
     ()),
    ("INSERT INTO stack_counts (destination, records) VALUES ('a', 4), ('b', 2)", ()),
    ("UPDATE stack SET state = 'failed', lease_until = 9.5 WHERE seq IN (1, 5)", ()),
    ("DELETE FROM stack WHERE seq IN (1, 2)", ()),  # two of order 1's three, in one statement
    ("DELETE FROM stack WHERE order_id = 2", ()),  # all of order 2 at once
    ("UPDATE stack SET next_attempt = 42.0 WHERE seq = 3", ()),
]


def _run_script(db) -> list[list[tuple[object, ...]]]:
    with db.tx() as conn:
        for sql, params in _SCRIPT:
            conn.execute(sql, params)
    return [[tuple(r) for r in db.query(sql)] for sql in (
        "SELECT * FROM stack_heads ORDER BY order_id", "SELECT * FROM stack_counts ORDER BY destination",
        "SELECT value FROM meta WHERE key = 'config_version'")]


def test_the_triggers_keep_heads_counts_and_config_version_as_sqlites_do(pg_server, sqlite):
    pg = PostgresDatabase.open(pg_server.url(pg_server.create_database("triggers")), create=True)
    try:
        on_pg = _run_script(pg)
    finally:
        pg.close()
    assert on_pg == _run_script(sqlite)
    assert on_pg[0] == [(1, 3, "a", "queued", 42.0, None, 1.0, 1), (3, 6, "a", "queued", 6.0, None, 1.0, 1)]
    assert on_pg[2] == [("4",)]  # two inserts and two updates of stores, one bump per row


_QUEUE_NEW = ("INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
              "VALUES (?, 7, '#7', 's', 'a', '{}', 1.0, 1.0) RETURNING seq")


def test_a_record_keeps_its_order_destination_and_seq_and_its_seq_is_never_reused(pg):
    with pg.tx() as conn:
        seq = conn.execute(_QUEUE_NEW, ("k1",)).fetchone()[0]
        conn.execute("UPDATE stack SET destination = destination, attempts = 1 WHERE seq = ?", (seq,))  # unchanged: fine
    with pytest.raises(psycopg.IntegrityError, match="keeps its order, destination and seq"), pg.tx() as conn:
        conn.execute("UPDATE stack SET destination = 'elsewhere' WHERE seq = ?", (seq,))
    with pg.tx() as conn:
        conn.execute("DELETE FROM stack WHERE seq = ?", (seq,))
        again = conn.execute(_QUEUE_NEW, ("k2",)).fetchone()[0]
    assert again > seq


_INIT = """
import sys, time
from statusctl.storage.postgres import PostgresDatabase
db = PostgresDatabase.open(sys.argv[1], create=True, migrate=False)
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
print(",".join(db.migrate()))
db.close()
"""


def test_init_from_several_machines_at_once_migrates_once(pg_server):
    url = pg_server.url(pg_server.create_database("init"))
    go = time.time() + 3  # every process connected and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", _INIT, url, str(go)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    applied = [name for out, _ in outputs for name in out.strip().split(",") if name]
    assert sorted(applied) == [name for name, _ in MIGRATIONS]  # each migration applied by exactly one of them
    db = PostgresDatabase.open(url)
    try:
        assert db.one("SELECT count(*) FROM migrations")[0] == len(MIGRATIONS)
    finally:
        db.close()


def test_a_database_at_0005_moves_to_0006_with_its_labels_in_order_and_its_history(pg_server):
    """A shop's database from before 0006: its labels get rowids in the order they sit in, the history stays."""
    from statusctl.core import labels

    url = pg_server.url(pg_server.create_database("up"))
    old = PostgresDatabase.open(url, create=True, migrate=False)
    try:
        old.migrate(MIGRATIONS[:5])
        with old.tx() as conn:
            conn.execute("INSERT INTO labels (name, scope) VALUES ('Zulu Hold', 'order'), ('Alpha Hold', 'order')")
            conn.execute("INSERT INTO stores (name, cart, url, created) VALUES ('s', 'none', 'https://x.invalid', 'now')")
            conn.execute("INSERT INTO orders (number, store, order_date, customer_name, customer_email, "
                         "ship_postal_code, imported) VALUES ('1', 's', '2026-11-20', 'A', 'a@x', '1', 'now')")
            conn.execute("INSERT INTO label_history (at, order_id, event, to_label) "
                         "SELECT 'now', id, 'order-imported', 'Zulu Hold' FROM orders")
    finally:
        old.close()
    new = PostgresDatabase.open(url)  # migrates
    try:
        assert new.one("SELECT name FROM migrations ORDER BY name DESC LIMIT 1")[0] == MIGRATIONS[-1][0]
        assert [label.name for label in labels.all_labels(new)] == ["Zulu Hold", "Alpha Hold"]
        assert new.one("SELECT COUNT(*) FROM label_history")[0] == 1
        assert new.one("SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' "
                       "AND conrelid = 'label_history'::regclass")[0] == 0
    finally:
        new.close()


def test_0006_waits_for_an_apply_on_another_machine_instead_of_deadlocking_with_it(pg_server):
    """An apply holds its orders, then writes their history; 0006 locks orders first, so it waits behind it."""
    import threading

    url = pg_server.url(pg_server.create_database("up6"))
    old = PostgresDatabase.open(url, create=True, migrate=False)
    old.migrate(MIGRATIONS[:5])
    old.close()
    applying = psycopg.connect(url)
    applying.execute("INSERT INTO stores (name, cart, url, created) VALUES ('s', 'none', 'https://x.invalid', 'now')")
    applying.execute("INSERT INTO orders (number, store, order_date, customer_name, customer_email, "
                     "ship_postal_code, imported) VALUES ('1', 's', '2026-11-20', 'A', 'a@x', '1', 'now')")
    applying.commit()
    applying.execute("SELECT id FROM orders FOR UPDATE")  # what an apply's load takes first
    migrated: list[object] = []

    def migrate() -> None:
        try:
            PostgresDatabase.open(url).close()
            migrated.append("done")
        except Exception as exc:  # noqa: BLE001 - the test reports it
            migrated.append(exc)

    upgrade = threading.Thread(target=migrate)
    upgrade.start()
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as watch:
        while not watch.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'").fetchone() and time.monotonic() < deadline:
            time.sleep(0.05)  # until the migration waits for a lock
    applying.execute("INSERT INTO label_history (at, order_id, event, to_label) "
                     "SELECT 'now', id, 'order-shipped', 'Shipped' FROM orders")
    applying.commit()
    applying.close()
    upgrade.join(30)
    assert migrated == ["done"]
