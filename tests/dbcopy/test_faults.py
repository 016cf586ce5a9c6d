"""`statusctl db copy` cut short (kill -9, the server gone, a row refused), its progress, and two copies at once.

Each failure must leave the target as createdb left it: the copy is one transaction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statusctl.storage.copy import Progress

from ..helpers import cli
from .helpers import (
    doc,
    fill_stack,
    pg_one,
    psycopg,
    refused,
    sql,
    sqlite_rows,
    statusctl_tables,
)

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


def test_kill_9_midway_leaves_the_target_as_it_was(db_file, shop, empty_pg):
    fill_stack(db_file, 20_000)
    done = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, str(db_file), empty_pg], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == -9 and done.stdout == "midway\n", done.stderr
    # The server ends the dead client's transaction: no table, as createdb left it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pg_one(empty_pg, "SELECT COUNT(*) FROM pg_stat_activity "
                                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"):
        time.sleep(0.05)
    assert statusctl_tables(empty_pg) == 0
    assert doc("db", "copy", "--to", empty_pg, "--json")["tables"]["stack"] == len(
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


def test_the_server_gone_midway_is_one_sentence_and_writes_nothing(db_file, shop, empty_pg, caplog):
    from statusctl.domain.errors import DatabaseError
    from statusctl.storage.copy import copy_database
    from statusctl.storage.db import Database
    from statusctl.storage.postgres import PostgresDatabase

    fill_stack(db_file, 20_000)
    source = Database.open(db_file, create=False, migrate=False)
    copy_to = PostgresDatabase.open(empty_pg, create=True, migrate=False)
    gone = _ServerGone(empty_pg)
    try:
        with pytest.raises(DatabaseError) as err:
            copy_database(source, copy_to, progress=gone)
    finally:
        copy_to.close()
        source.close()
    assert gone.done and "\n" not in str(err.value) and empty_pg in str(err.value)
    assert "was lost" in str(err.value)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []  # nothing more on stderr
    assert statusctl_tables(empty_pg) == 0


def test_a_row_postgresql_refuses_is_named_and_nothing_is_copied(db_file, shop, empty_pg):
    sql(db_file, "UPDATE orders SET customer_name = ? WHERE number = '1004'", ("nul\x00byte",))
    err = refused("--to", empty_pg)
    assert "PostgreSQL refused a row of orders" in err and "nothing was copied" in err
    assert statusctl_tables(empty_pg) == 0


def test_progress_hears_every_row(db_file, shop, empty_pg):
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
    copy_to = PostgresDatabase.open(empty_pg, create=True, migrate=False)
    try:
        report = copy_database(source, copy_to, progress=heard)
    finally:
        copy_to.close()
        source.close()
    assert heard.seen == heard.counts == report.tables


@pytest.mark.slow
def test_a_million_records_copy_in_reasonable_time(db_file, empty_pg):
    cli("init")
    fill_stack(db_file, 1_000_000)
    start = time.monotonic()
    report = doc("db", "copy", "--to", empty_pg, "--json")
    took = time.monotonic() - start
    assert report["tables"]["stack"] == 1_000_000 and report["tables"]["stack_heads"] == 1_000_000
    assert took < 120, f"{took:.1f} s"
    print(json.dumps({"stack_rows": 1_000_000, "seconds": round(took, 1)}))


def test_a_progress_bar_only_on_a_terminal(db_file, shop, pg_server):
    import pty

    piped = cli("db", "copy", "--to", pg_server.url(pg_server.create_database("bar"))).stdout
    assert "Copying" not in piped, piped
    fill_stack(db_file, 30_000)
    leader, follower = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "statusctl", "db", "copy", "--to",
                           pg_server.url(pg_server.create_database("bar"))],
                          stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, timeout=120,
                          env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(Path(__file__).parents[2])})
    os.close(follower)
    shown = b""
    with __import__("contextlib").suppress(OSError):
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert done.returncode == 0, done.stderr
    assert b"Copying stack" in shown and b"Copied " in shown


def test_two_copies_at_once_into_one_target_make_one_copy(db_file, shop, empty_pg):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "STATUSCTL_DB": str(db_file)}
    runs = [subprocess.Popen([sys.executable, "-m", "statusctl", "db", "copy", "--to", empty_pg, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    ends = sorted((p.wait(timeout=120), *p.communicate()) for p in runs)
    (ok, out, _), (no, _, err) = ends
    assert (ok, no) == (0, 1), ends
    assert json.loads(out)["tables"]["stack"] == len(sqlite_rows(db_file, "stack", "seq"))
    assert "already holds statusctl data" in err and err.count("\n") == 1
    assert pg_one(empty_pg, "SELECT COUNT(*) FROM stack") == len(sqlite_rows(db_file, "stack", "seq"))
