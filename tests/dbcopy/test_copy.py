"""`statusctl db copy --to URL`: a real shop's SQLite database into a fresh PostgreSQL database.

The source is built through the CLI (stores, orders, ships, a delivered, a retried and a
failed record, records left queued); every copied table is then compared row by row, the
identities checked to continue past the copied ids, the copy drained, and every refusal
checked to write nothing. Failures midway and concurrency: tests/dbcopy/test_faults.py.
"""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

import pytest

from statusctl.storage.copy import IDENTITIES, TABLES

from ..helpers import cli
from ..pgcluster import PASSWORD_ROLE
from ..stackhelpers import STORE
from .helpers import (
    columns,
    doc,
    pg_one,
    pg_rows,
    psycopg,
    refused,
    sql,
    sqlite_rows,
    statusctl_tables,
)

# -- the copy --------------------------------------------------------------------------


def test_every_table_is_copied_row_by_row_with_ids_seqs_states_and_history(db_file, shop, empty_pg):
    report = doc("db", "copy", "--to", empty_pg, "--json")
    assert report["target"] == empty_pg and report["source"] == str(db_file) and report["created_schema"]
    assert list(report["tables"]) == [t for t, _ in TABLES]
    for table, order in TABLES:
        rows = sqlite_rows(db_file, table, order)
        assert report["tables"][table] == len(rows), table
        assert pg_rows(empty_pg, table, order, columns(db_file, table)) == rows, table
    # What the shop holds is really there (not two empty tables compared).
    assert report["tables"]["stack"] == sum(len(v) for v in shop.values()) >= 5
    assert min(report["tables"][t] for t in ("orders", "items", "packages", "label_history", "stack_history")) > 0
    states = dict(pg_rows(empty_pg, "stack", "seq", ["uid", "state"]))
    assert list(states.values()).count("failed") == 1
    assert pg_one(empty_pg, "SELECT COUNT(*) FROM controllers") == 0
    assert pg_one(empty_pg, "SELECT string_agg(name, ',' ORDER BY name) FROM migrations") == ",".join(
        r[0] for r in sql(db_file, "SELECT name FROM migrations ORDER BY name"))
    assert sql(db_file, "SELECT COUNT(*) FROM controllers") == [(1,)]  # the source is untouched


def test_labels_keep_the_order_they_were_added_in(db_file, shop, empty_pg):
    """`labels list` shows user labels in the order of adding: SQLite's rowid goes across (not the names' order)."""
    for name in ("Zulu Hold", "Alpha Hold"):
        cli("labels", "add", name, "--scope", "order")
    before = [row["name"] for row in doc("labels", "list", "--json")]
    assert before.index("Zulu Hold") < before.index("Alpha Hold")
    cli("db", "copy", "--to", empty_pg)
    assert [row["name"] for row in doc("--db", empty_pg, "labels", "list", "--json")] == before
    cli("--db", empty_pg, "labels", "add", "Bravo Hold", "--scope", "order")  # past the copied rowids
    assert [row["name"] for row in doc("--db", empty_pg, "labels", "list", "--json")] == [*before, "Bravo Hold"]


def test_identities_continue_past_the_copied_ids(db_file, shop, empty_pg):
    newest = shop["1002"][-1]
    cli("stack", "drop", newest, "--yes")
    # The stack's seq continues past every seq SQLite ever gave, the dropped newest record's too.
    ever = sql(db_file, "SELECT seq FROM sqlite_sequence WHERE name = 'stack'")[0][0]
    assert ever > sql(db_file, "SELECT MAX(seq) FROM stack")[0][0]
    report = doc("db", "copy", "--to", empty_pg, "--json")
    for table, col in IDENTITIES.items():
        top = sql(db_file, f"SELECT COALESCE(MAX({col}), 0) FROM {table}")[0][0]
        expected = max(top, ever) + 1 if table == "stack" else top + 1
        assert report["next_ids"][f"{table}.{col}"] == expected, table
        assert pg_one(empty_pg, f"SELECT nextval(pg_get_serial_sequence('{table}', '{col}'))") == expected, table


def test_people_get_a_table_of_rows_per_table(db_file, shop, empty_pg):
    out = cli("db", "copy", "--to", empty_pg).stdout
    assert f"Copied {db_file} to {empty_pg}:" in out
    cells = {tuple(c.strip() for c in line.split("│")[1:3]) for line in out.splitlines() if line.count("│") == 3}
    for table, order in TABLES:
        assert (table, str(len(sqlite_rows(db_file, table, order)))) in cells, table
    assert "in one transaction" in out and f"STATUSCTL_DB={empty_pg}" in out


def test_the_copy_delivers_what_was_left_in_order(db_file, shop, hooked, empty_pg, monkeypatch):
    hook, _ = hooked
    report = doc("db", "copy", "--to", empty_pg, "--json")
    monkeypatch.setenv("STATUSCTL_DB", empty_pg)
    cli("ship", "1004", "--tracking", "NEW-1")  # a new record and a new package, on the copy
    assert pg_one(empty_pg, "SELECT MAX(seq) FROM stack") == report["next_ids"]["stack.seq"]
    assert pg_one(empty_pg, "SELECT MAX(id) FROM packages") == report["next_ids"]["packages.id"]
    shop = {**shop, "1004": [pg_one(empty_pg, "SELECT uid FROM stack WHERE order_number = '1004'")]}
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


def test_a_target_that_holds_data_is_refused_and_kept(db_file, shop, empty_pg):
    cli("db", "copy", "--to", empty_pg)
    before = {t: pg_one(empty_pg, f"SELECT COUNT(*) FROM {t}") for t, _ in TABLES}
    cli("ship", "1004")
    err = refused("--to", empty_pg)
    assert "already holds statusctl data (rows in stores, orders" in err
    assert {t: pg_one(empty_pg, f"SELECT COUNT(*) FROM {t}") for t, _ in TABLES} == before


def test_a_target_with_a_table_of_another_application_is_refused(db_file, shop, empty_pg):
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
    err = refused("--to", empty_pg)
    assert "already holds a table named orders that is not statusctl's" in err
    assert statusctl_tables(empty_pg) == 1


def test_a_target_where_only_init_ran_gets_its_defaults_replaced(db_file, shop, empty_pg):
    cli("--db", empty_pg, "init")
    cli("--db", empty_pg, "config", "set", "StackRetrySchedule", "7,7")
    cli("--db", empty_pg, "labels", "add", "Only On The Target", "--scope", "order")
    assert pg_one(empty_pg, "SELECT COUNT(*) FROM events") > 0
    report = doc("db", "copy", "--to", empty_pg, "--json")
    assert not report["created_schema"]
    for table in ("settings", "labels", "meta", "label_maps", "events"):
        order = dict(TABLES)[table]
        assert pg_rows(empty_pg, table, order, columns(db_file, table)) == sqlite_rows(db_file, table, order), table


def test_a_target_with_a_controller_registered_is_refused(db_file, shop, empty_pg):
    from statusctl.storage.postgres import PostgresDatabase

    PostgresDatabase.open(empty_pg, create=True).close()
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        conn.execute("INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES ('c', 1, 'h', 0, 0, 'x')")
    assert "rows in controllers" in refused("--to", empty_pg)
    assert pg_one(empty_pg, "SELECT COUNT(*) FROM stack") == 0


def test_a_live_controller_on_the_source_is_refused(db_file, shop, empty_pg):
    sql(db_file, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) "
        "VALUES ('live', 4242, 'warehouse-1', ?, ?, 'watch')", (time.time() - 60, time.time() - 1))
    err = refused("--to", empty_pg)
    assert "A controller is running on" in err and "pid 4242 on warehouse-1" in err
    assert statusctl_tables(empty_pg) == 0


def test_a_record_under_a_live_lease_is_refused(db_file, shop, empty_pg):
    sql(db_file, "UPDATE stack SET lease_owner = 'gone', lease_until = ? WHERE seq = (SELECT MIN(seq) FROM stack)",
        (time.time() + 30,))
    err = refused("--to", empty_pg)
    assert "1 record(s) on" in err and "still leased" in err and "try again in" in err
    assert statusctl_tables(empty_pg) == 0


def test_a_source_behind_the_latest_migration_is_refused_and_not_migrated(tmp_path, empty_pg, monkeypatch):
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
    err = refused("--to", empty_pg)
    assert "is not at the latest migration (0004_fair_stack is missing)" in err and "statusctl init" in err
    assert sql(path, "SELECT COUNT(*) FROM migrations") == [(3,)]
    assert statusctl_tables(empty_pg) == 0


def test_without_psycopg_the_copy_says_what_to_install(db_file, shop, empty_pg, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as when it is not installed
    assert "pip install '.[postgres]'" in refused("--to", empty_pg)
    monkeypatch.undo()
    assert statusctl_tables(empty_pg) == 0


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
    # The URL to set everywhere leaves the password out (~/.pgpass gives it), not a mask to paste.
    assert f"STATUSCTL_DB={pg_server.url(name, PASSWORD_ROLE)} on every" in " ".join(outputs[0].split())
    assert pg_one(pg_server.url(name), "SELECT COUNT(*) FROM stack") == len(sqlite_rows(db_file, "stack", "seq"))


def test_a_password_given_as_a_query_parameter_is_never_shown_nor_suggested(db_file, shop, pg_server):
    name = pg_server.create_database("copyqpw")
    pg_server.sql(f'ALTER DATABASE "{name}" OWNER TO {PASSWORD_ROLE}')
    url = (f"{pg_server.url(name, PASSWORD_ROLE)}?password={quote(pg_server.password, safe='')}&connect_timeout=5"
           "&sslpassword=unused-key-passphrase")
    out = cli("db", "copy", "--to", url).output
    assert pg_server.password not in out and quote(pg_server.password, safe="") not in out, out
    assert "unused-key-passphrase" not in out
    said = " ".join(out.split())
    assert f"STATUSCTL_DB={pg_server.url(name, PASSWORD_ROLE)}?connect_timeout=5 on every" in said
    assert "~/.pgpass; sslpassword was left out of it too" in said


def test_a_source_that_is_a_postgresql_url_is_refused(db_file, shop, empty_pg, pg_server):
    other = pg_server.url(pg_server.create_database("src"))
    err = refused("--to", empty_pg, env={"STATUSCTL_DB": other})
    assert "works on a SQLite database file" in err
    assert statusctl_tables(empty_pg) == 0


def test_a_source_written_by_a_newer_statusctl_is_refused(db_file, shop, empty_pg):
    sql(db_file, "INSERT INTO migrations (name, applied) VALUES ('0099_from_the_future', 0)")
    assert "was written by a newer statusctl (migration 0099_from_the_future)" in refused("--to", empty_pg)
    assert statusctl_tables(empty_pg) == 0


def test_a_target_at_another_schema_version_or_with_other_columns_is_refused(db_file, shop, pg_server):
    from statusctl.storage.postgres import PostgresDatabase

    behind, altered = (pg_server.url(pg_server.create_database(p)) for p in ("behind", "altered"))
    for url in (behind, altered):
        PostgresDatabase.open(url, create=True).close()
    with psycopg.connect(behind, autocommit=True) as conn:
        conn.execute("DELETE FROM migrations WHERE name = '0005_stack_keys_fixed'")
    with psycopg.connect(altered, autocommit=True) as conn:
        conn.execute("ALTER TABLE stack ADD COLUMN note text")
    assert "is not at this statusctl's schema version" in refused("--to", behind)
    assert "The table stack has different columns in the source and in" in refused("--to", altered)
    for url in (behind, altered):
        assert pg_one(url, "SELECT COUNT(*) FROM labels") == 0
