"""The database: where it lives, its file mode, WAL, migrations, init, transactions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from statusctl.core import paths
from statusctl.domain.errors import ConfigError, DatabaseError
from statusctl.storage.db import Database
from statusctl.storage.migrations import MIGRATIONS

from .helpers import add_webhook_store, cli, count, dump, error_of


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- where the database lives ------------------------------------------------------------


def test_init_uses_statusctl_db_and_prints_the_path(db_file: Path):
    result = cli("init")
    assert result.stdout.strip() == str(db_file)
    assert db_file.exists()


@pytest.mark.no_database
def test_db_option_beats_the_environment(tmp_path: Path, db_file: Path):
    other = tmp_path / "sub" / "other.db"
    result = cli("--db", other, "init")
    assert result.stdout.strip() == str(other)
    assert other.exists()
    assert not db_file.exists()
    # Later commands without --db are back on STATUSCTL_DB.
    cli("--db", other, "config", "set", "UseStatusUpdates", "yes")
    assert cli("--db", other, "config", "get", "UseStatusUpdates").stdout.strip() == "true"
    cli("init")
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == "false"


def test_without_option_or_environment_the_user_data_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("STATUSCTL_DB")
    expected = paths.data_dir() / paths.DB_FILENAME
    assert str(expected).startswith(str(tmp_path)), "conftest keeps the data directory in tmp_path"
    assert paths.db_path() == expected
    assert cli("init").stdout.strip() == str(expected)
    assert expected.exists()


def test_db_path_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STATUSCTL_DB", str(tmp_path / "env.db"))
    assert paths.db_path(tmp_path / "opt.db") == tmp_path / "opt.db"
    assert paths.db_path() == tmp_path / "env.db"
    monkeypatch.delenv("STATUSCTL_DB")
    assert paths.db_path() == paths.data_dir() / "statusctl.db"
    monkeypatch.setenv("STATUSCTL_DB", "")  # set but empty: refused, not the default (tests/test_missing_database.py)
    with pytest.raises(ConfigError, match="STATUSCTL_DB is empty"):
        paths.db_path()


@pytest.mark.no_database
def test_only_init_creates_the_database_and_loads_the_defaults(db_file: Path):
    assert "statusctl init" in error_of("labels", "list", "--json")
    assert not db_file.exists()
    cli("init")
    assert "Order Received" in cli("labels", "list", "--json").stdout


# -- the file ----------------------------------------------------------------------------


@pytest.mark.no_database
def test_database_file_is_created_0600_whatever_the_umask(db_file: Path):
    old = os.umask(0o000)
    try:
        cli("init")
    finally:
        os.umask(old)
    assert mode(db_file) == 0o600
    # SQLite gives its WAL and shared-memory files the database file's mode; they
    # exist while a connection is open.
    old = os.umask(0o000)
    db = Database.open(db_file)
    try:
        with db.tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        for suffix in ("-wal", "-shm"):
            side = db_file.with_name(db_file.name + suffix)
            assert side.exists(), suffix
            assert mode(side) == 0o600, suffix
    finally:
        db.close()
        os.umask(old)


def test_database_uses_wal(db_file: Path):
    cli("init")
    conn = sqlite3.connect(db_file)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    db = Database.open(db_file)
    try:
        assert db.one("PRAGMA journal_mode")[0] == "wal"
        assert db.one("PRAGMA foreign_keys")[0] == 1
        assert db.conn.isolation_level is None
    finally:
        db.close()


def test_a_file_that_is_not_a_database_is_one_clear_error(db_file: Path):
    db_file.write_bytes(b"this is not sqlite at all, just some text " * 100)
    message = error_of("labels", "list")
    assert str(db_file) in message
    assert "not a statusctl database" in message or "corrupt" in message


def test_a_directory_that_cannot_be_created_is_one_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = error_of("--db", blocker / "sub" / "db.sqlite", "init")
    assert "Cannot create the database" in message


# -- migrations --------------------------------------------------------------------------


def test_migrations_are_recorded_by_name(db_file: Path):
    db = Database.open(db_file)
    try:
        names = [r["name"] for r in db.query("SELECT name FROM migrations ORDER BY name")]
        assert names == sorted(name for name, _ in MIGRATIONS)
        assert all(r["applied"] > 0 for r in db.query("SELECT applied FROM migrations"))
    finally:
        db.close()


def test_migrations_are_idempotent(db_file: Path):
    first = Database.open(db_file)
    again = first.migrate()
    first.close()
    assert again == []
    before = dump(db_file)
    second = Database.open(db_file)
    assert second.migrate() == []
    second.close()
    assert dump(db_file) == before
    assert count("migrations") == len(MIGRATIONS)


def test_migrations_are_named_and_ordered():
    names = [name for name, _ in MIGRATIONS]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    assert all(name[:4].isdigit() and name[4] == "_" for name in names)


def test_init_is_idempotent_and_keeps_the_users_choices(db_file: Path):
    cli("init")
    first = dump(db_file)
    cli("init")
    assert dump(db_file) == first
    cli("events", "set", "order-approved", "--no-notify-cart")
    cli("labels", "add", "Gift Wrapped", "--scope", "item")
    cli("labels", "add", "Processing", "--scope", "order", "--map", "woocommerce=wc-processing")
    changed = dump(db_file)
    cli("init")
    assert dump(db_file) == changed
    events = {e["event"]: e for e in cli_events()}
    assert events["order-approved"]["notify_cart"] is False
    assert count("labels") == 13


def cli_events() -> list[dict[str, object]]:
    return list(json.loads(cli("events", "list", "--json").stdout))


# -- transactions ------------------------------------------------------------------------


def test_a_failed_transaction_rolls_back(db_file: Path):
    db = Database.open(db_file)
    try:
        with pytest.raises(RuntimeError), db.tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            raise RuntimeError("boom")
        assert db.one("SELECT * FROM meta WHERE key = 'k'") is None
        with db.tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        assert db.one("SELECT value FROM meta WHERE key = 'k'")["value"] == "v"
    finally:
        db.close()


def test_a_writer_waits_for_another_writers_lock(db_file: Path):
    db = Database.open(db_file)
    other = sqlite3.connect(db_file, isolation_level=None)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with db.tx() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('b', '2')")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
        writer = threading.Thread(target=write)
        writer.start()
        writer.join(0.3)  # still blocked on the lock (or not yet started): either way it must wait
        other.execute("COMMIT")
        writer.join(10)
        assert not writer.is_alive()
        assert errors == []
        assert {r["key"]: r["value"] for r in db.query("SELECT * FROM meta WHERE key IN ('a', 'b')")} == {"a": "1", "b": "2"}
    finally:
        other.close()
        db.close()


def test_query_errors_are_database_errors(db_file: Path):
    db = Database.open(db_file)
    try:
        with pytest.raises(DatabaseError):
            db.query("SELECT * FROM no_such_table")
    finally:
        db.close()


def test_reopening_never_duplicates_the_defaults(db_file: Path):
    cli("init")
    add_webhook_store()
    assert count("stores") == 1
    # Reopening never re-runs a migration or duplicates the defaults.
    for _ in range(3):
        Database.open(db_file).close()
    assert count("labels") == 12
    assert count("events") == 12
