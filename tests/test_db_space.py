"""The write-ahead log gives its space back: a big transaction's log is not kept at its high-water mark."""

from __future__ import annotations

from pathlib import Path

from statusctl.storage.db import WAL_SIZE_LIMIT, Database


def _wal(db_file: Path) -> int:
    return Path(f"{db_file}-wal").stat().st_size


def test_a_big_transactions_wal_shrinks_after_the_next_checkpoint_and_can_be_given_back(db_file: Path) -> None:
    db = Database.open(db_file)
    other = Database.open(db_file)  # a second connection keeps the WAL from being removed on close
    try:
        with db.tx() as conn:
            for k in range(40):
                conn.execute("INSERT INTO meta (key, value) VALUES (?, hex(randomblob(300000)))", (f"big-{k}",))
        assert _wal(db_file) > 2 * WAL_SIZE_LIMIT
        with db.tx() as conn:
            conn.execute("DELETE FROM meta WHERE key LIKE 'big-%'")
        db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        with db.tx() as conn:  # the first write after a complete checkpoint starts the log again
            conn.execute("INSERT INTO meta (key, value) VALUES ('small', 'x')")
        assert _wal(db_file) <= WAL_SIZE_LIMIT, "the log stayed at its high-water mark"
        given = db.give_back_space()
        assert given is not None and given > 0
        assert _wal(db_file) == 0
        assert other.one("SELECT value FROM meta WHERE key = 'small'")[0] == "x"
    finally:
        other.close()
        db.close()
