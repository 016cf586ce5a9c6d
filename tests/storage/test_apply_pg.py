"""A bulk apply on PostgreSQL: its flushes stream out (psycopg's pipeline) while the rows go on, and
it writes exactly what SQLite writes for the same file, all of it or (on any error, the server's
included) nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statusctl.core import actions
from statusctl.core.changes import ChangeSession
from statusctl.core.orders import import_orders
from statusctl.domain.errors import DatabaseError, InputError
from statusctl.storage.backends import Target, open_database

from ..helpers import cli
from ..stackdb import setup_db

ORDERS = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n" + "".join(
    f"A{o},2026-11-20,Customer {o},c{o}@example.com,0213{o},SKU-{i},Product {i},{1 + i % 2}\n"
    for o in range(1, 7) for i in range(1, 4))

# With a flush every 2 rows, a package made in one flush gets more items, and more of an item
# it holds, in later flushes (the statement that must add to what is there); others are whole.
APPLY = """action,event,order,sku,quantity,tracking,carrier,note
ship,,A1,SKU-1,1,T-1,UPS,first box
ship,,A1,SKU-2,1,T-1,UPS,
ship,,A1,SKU-1,1,T-1,UPS,the rest of SKU-1 in the same box
ship,,A1,SKU-3,2,T-2,FedEx,
ship,,A2,,,T-3,USPS,the whole order
cancel,,A3,SKU-2,,,,out of stock
fire,order-on-hold,A4,,,,,
ship,,A3,SKU-1,2,T-4,UPS,
fire,order-approved,A4,,,,,
ship,,A5,SKU-1,1,,,no tracking
ship,,A5,SKU-1,1,,,no tracking again
cancel,,A6,,,,,
"""


def _shop(target: Target, folder: Path) -> None:
    setup_db(target, {"hook": "http://127.0.0.1:9/hook"})
    orders = folder / "orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    db = open_database(target)
    try:
        import_orders(db, orders, "hook")
    finally:
        db.close()


def _contents(target: Target) -> dict[str, Any]:
    """What an apply writes, by order number and sku (not by id), in the order it was written."""
    db = open_database(target)
    try:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in db.query(sql)]

        return {
            "orders": rows("SELECT number, label FROM orders ORDER BY number"),
            "items": rows("SELECT o.number, i.sku, i.label, i.shipped, i.cancelled FROM items i "
                          "JOIN orders o ON o.id = i.order_id ORDER BY o.number, i.sku"),
            "packages": rows("SELECT o.number, p.tracking, p.carrier, i.sku, pi.quantity FROM packages p "
                             "JOIN orders o ON o.id = p.order_id JOIN package_items pi ON pi.package_id = p.id "
                             "JOIN items i ON i.id = pi.item_id ORDER BY p.id, i.sku"),
            "history": rows("SELECT o.number, i.sku, h.event, h.from_label, h.to_label FROM label_history h "
                            "JOIN orders o ON o.id = h.order_id LEFT JOIN items i ON i.id = h.item_id ORDER BY h.id"),
            "stack": [(r[0], r[1], _stable(r[2])) for r in rows(
                "SELECT order_number, destination, payload FROM stack ORDER BY seq")],
            "heads": rows("SELECT o.number, h.records FROM stack_heads h JOIN orders o ON o.id = h.order_id "
                          "ORDER BY o.number"),
            "counts": rows("SELECT destination, records FROM stack_counts ORDER BY destination"),
        }
    finally:
        db.close()


def _stable(payload: str) -> dict[str, Any]:
    """A record's payload less the moments it was made at."""
    data = json.loads(payload)
    data.pop("changed_at")
    for package in data["packages"]:
        package.pop("shipped_at")
    return data


@pytest.fixture
def small_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "FLUSH_EVERY", 2)


@pytest.mark.usefixtures("small_flushes")
def test_an_apply_streamed_over_many_flushes_writes_what_sqlite_writes(db_file: Path, pg_target: str,
                                                                       tmp_path: Path):
    apply_csv = tmp_path / "apply.csv"
    apply_csv.write_text(APPLY, encoding="utf-8")
    written = {}
    for target in (db_file, pg_target):
        _shop(target, tmp_path)
        db = open_database(target)
        try:
            summary = actions.apply_file(db, apply_csv)
        finally:
            db.close()
        assert (summary.rows, summary.orders, summary.records) == (12, 6, 6)
        written[str(target)] = _contents(target)
    sqlite, pg = written[str(db_file)], written[pg_target]
    assert pg == sqlite
    # The box made in the first flush took SKU-1 in two rows, the second two flushes later: one row of 2.
    assert ("A1", "T-1", "UPS", "SKU-1", 2) in pg["packages"]
    assert ("A1", "T-2", "FedEx", "SKU-3", 2) in pg["packages"]


@pytest.mark.usefixtures("small_flushes")
def test_a_bad_row_after_several_streamed_flushes_leaves_nothing_written(pg_target: str, tmp_path: Path):
    _shop(pg_target, tmp_path)
    before = _contents(pg_target)
    apply_csv = tmp_path / "apply.csv"
    apply_csv.write_text(APPLY + "ship,,A9,SKU-1,1,T-9,UPS,\n", encoding="utf-8")
    db = open_database(pg_target)
    try:
        with pytest.raises(InputError, match=r"apply\.csv, line 14, field 'order': Unknown order 'A9'"):
            actions.apply_file(db, apply_csv)
    finally:
        db.close()
    assert _contents(pg_target) == before


@pytest.fixture
def refusing_history(pg_target: str) -> Iterator[None]:
    """The server refuses the history row of an item's cancel (a trigger), as it would a row it cannot take."""
    import psycopg

    with psycopg.connect(pg_target, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION refuse_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.event = 'item-cancelled' THEN
                    RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_cancel BEFORE INSERT ON label_history FOR EACH ROW EXECUTE FUNCTION refuse_cancel();
        """)
    yield
    with psycopg.connect(pg_target, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse_cancel ON label_history; DROP FUNCTION refuse_cancel()")


@pytest.mark.usefixtures("small_flushes", "refusing_history")
def test_a_statement_the_server_refuses_mid_stream_rolls_the_whole_apply_back(pg_target: str, tmp_path: Path):
    """A write sent without waiting fails on the server: the apply ends with that error, and nothing stays."""
    import psycopg

    _shop(pg_target, tmp_path)
    before = _contents(pg_target)
    apply_csv = tmp_path / "apply.csv"
    apply_csv.write_text(APPLY, encoding="utf-8")
    db = open_database(pg_target)
    try:
        with pytest.raises(psycopg.errors.CheckViolation, match="refused for the test"):
            actions.apply_file(db, apply_csv)
        # The connection is usable afterwards: the failed pipeline was ended and rolled back.
        assert db.one("SELECT COUNT(*) FROM label_history WHERE event != 'order-imported'")[0] == 0
    finally:
        db.close()
    assert _contents(pg_target) == before


@pytest.mark.usefixtures("refusing_history")
def test_the_cli_says_what_the_server_refused_in_one_sentence(pg_target: str, tmp_path: Path):
    """A PostgreSQL error no clause knows reaches the operator as one line and the database exit code."""
    _shop(pg_target, tmp_path)
    before = _contents(pg_target)
    apply_csv = tmp_path / "apply.csv"
    apply_csv.write_text(APPLY, encoding="utf-8")
    result = cli("--db", pg_target, "apply", apply_csv, code=DatabaseError.exit_code)
    assert result.stdout == ""
    assert result.stderr == "Error: database problem: refused for the test.\n"
    assert _contents(pg_target) == before


def test_the_label_history_takes_no_foreign_key_checks_on_postgresql(pg_target: str):
    """0006: the history is a log (as the stack history); the packages keep their foreign keys."""
    db = open_database(pg_target)
    try:
        keys = {(r[0], r[1]) for r in db.query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'")}
        compression = db.one("SELECT attcompression FROM pg_attribute "
                             "WHERE attrelid = 'stack'::regclass AND attname = 'payload'")
    finally:
        db.close()
    assert not {k for k in keys if k[0] == "label_history"}
    assert {("packages", "orders"), ("package_items", "packages"), ("package_items", "items"),
            ("items", "orders")} <= keys
    assert compression is not None and compression[0] == "l"  # lz4 (Debian's server has it)


def _frozen_after_flushes(monkeypatch: pytest.MonkeyPatch, flushes: int, seconds: float) -> None:
    """The apply stops for `seconds` after its `flushes`-th flush, as a process frozen mid-apply would."""
    done = {"flushes": 0}
    flush = ChangeSession.flush

    def frozen(self: ChangeSession) -> None:
        flush(self)
        done["flushes"] += 1
        if done["flushes"] == flushes:
            time.sleep(seconds)

    monkeypatch.setattr(ChangeSession, "flush", frozen)


@pytest.mark.usefixtures("small_flushes")
def test_an_apply_frozen_between_streamed_flushes_is_ended_by_the_idle_timeout(
        pg_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """Each flush ends with a Sync: the server sees the session idle, so a frozen apply loses its locks."""
    _shop(pg_target, tmp_path)
    before = _contents(pg_target)
    apply_csv = tmp_path / "apply.csv"
    apply_csv.write_text(APPLY, encoding="utf-8")
    _frozen_after_flushes(monkeypatch, 2, 3.0)
    db = open_database(pg_target)
    try:
        with db.reading() as conn:
            conn.execute("SET idle_in_transaction_session_timeout = '1s'")
        # The server ends the session; inside a pipeline libpq sees only the connection close, not why.
        with pytest.raises(DatabaseError, match=r"was lost during a transaction .*so the change was rolled back"):
            actions.apply_file(db, apply_csv)
    finally:
        db.close()
    assert _contents(pg_target) == before
    assert "error ignored" not in caplog.text  # psycopg's own warning of the pipeline it could not end


def test_a_stream_without_psycopgs_own_sync_queue_syncs_and_waits():
    """Where psycopg's pipeline has no `_enqueue_sync` (another version), the public sync() does the same, waiting."""
    from statusctl.storage.postgres import Stream

    class Pipeline:
        synced = 0

        def sync(self) -> None:
            self.synced += 1

    pipeline = Pipeline()
    Stream(None, pipeline).sync()  # type: ignore[arg-type]
    assert pipeline.synced == 1
