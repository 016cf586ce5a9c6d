"""PostgresDatabase on a real server: connecting every way libpq allows, rows, placeholders,
whole-transaction retry on a real deadlock, the server's clock, reconnection, lazy psycopg."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from statusctl.domain.errors import DatabaseError
from statusctl.domain.urls import mask_db_url as masked
from statusctl.storage.postgres import PostgresDatabase

from ..helpers import ROOT


@pytest.fixture
def db(pg_url):
    database = PostgresDatabase.open(pg_url, create=True)
    yield database
    database.close()


def _other(pg_url):
    """A second connection, as another machine's statusctl would have."""
    return PostgresDatabase.open(pg_url)


def test_open_migrates_and_names_the_database_by_its_masked_url(pg_server, pg_url, db):
    assert db.dialect == "postgresql"
    assert [r["name"] for r in db.query("SELECT name FROM migrations ORDER BY name")][0] == "0001_initial"
    assert db.name == pg_url  # no password to mask: the URL as given
    assert repr(db) == f"PostgresDatabase({pg_url!r})"
    with_password = pg_server.url("x", "statusctl_pw", pg_server.password)
    assert masked(with_password) == f"postgresql://statusctl_pw:••••••@127.0.0.1:{pg_server.port}/x"


def test_the_session_bounds_every_wait_and_speaks_utc(db):
    row = db.one("SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
                 "current_setting('idle_in_transaction_session_timeout'), current_setting('TimeZone'), "
                 "current_setting('application_name')")
    assert tuple(row) == ("30s", "2min", "1min", "UTC", "statusctl")


def test_a_shorter_busy_timeout_is_the_lock_timeout(pg_url, monkeypatch):
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.25")
    database = PostgresDatabase.open(pg_url)
    try:
        assert database.one("SELECT current_setting('lock_timeout')")[0] == "250ms"
    finally:
        database.close()


def test_postgres_scheme_socket_host_parameter_and_environment_reach_the_same_database(pg_server, pg_url, db):
    dbname = pg_url.rsplit("/", 1)[1]
    db.query("SELECT 1")
    for url in (pg_url.replace("postgresql://", "postgres://", 1), pg_server.socket_url(dbname)):
        other = PostgresDatabase.open(url)
        try:
            assert other.one("SELECT current_database()")[0] == dbname
        finally:
            other.close()


def test_pg_variables_and_pgpass_fill_in_what_the_url_leaves_out(pg_server, pg_url, db, monkeypatch):
    dbname = pg_url.rsplit("/", 1)[1]
    db.query("GRANT SELECT ON ALL TABLES IN SCHEMA public TO statusctl_pw")
    home = Path(os.environ["HOME"])
    home.mkdir(parents=True, exist_ok=True)
    pgpass = home / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:statusctl_pw:{pg_server.password}\n", encoding="utf-8")
    pgpass.chmod(0o600)  # libpq ignores a .pgpass others can read
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg_server.port))
    monkeypatch.setenv("PGUSER", "statusctl_pw")
    other = PostgresDatabase.open(f"postgresql:///{dbname}")
    try:
        assert tuple(other.one("SELECT current_user, inet_server_port()")) == ("statusctl_pw", pg_server.port)
    finally:
        other.close()


def test_a_password_given_in_the_url_is_used_and_never_shown(pg_server, pg_url, db):
    dbname = pg_url.rsplit("/", 1)[1]
    db.query("GRANT SELECT ON ALL TABLES IN SCHEMA public TO statusctl_pw")
    url = pg_server.url(dbname, "statusctl_pw", pg_server.password)
    other = PostgresDatabase.open(url)
    try:
        assert other.one("SELECT current_user")[0] == "statusctl_pw"
        for shown in (other.name, repr(other), str(vars(other).get("name"))):
            assert pg_server.password not in shown and quote(pg_server.password, safe="") not in shown
    finally:
        other.close()


def test_storage_code_written_for_sqlite_runs_unchanged(db):
    with db.tx() as conn:
        conn.execute("CREATE TEMP TABLE t (id bigint PRIMARY KEY, name text, pct text, flag bigint)")
        conn.executemany("INSERT INTO t (id, name, pct, flag) VALUES (?, ?, '5%', ?)",
                         [(i, f"n{i}", i % 2 == 0) for i in range(1, 6)])
        cur = conn.execute("UPDATE t SET name = upper(name) WHERE id > ?", (3,))
        assert cur.rowcount == 2
        assert conn.execute("SELECT count(*) FROM t WHERE name LIKE 'N%'").fetchone()[0] == 2
        rows = list(conn.execute("SELECT id, name, pct, flag FROM t WHERE id >= :low ORDER BY id", {"low": 4}))
    assert [(r[0], r["name"], r["PCT"], r["flag"]) for r in rows] == [(4, "N4", "5%", 1), (5, "N5", "5%", 0)]
    assert db.one("SELECT ? || '?' AS q", ("a",))["q"] == "a?"
    assert db.one("SELECT 1 WHERE false") is None


def test_arrays_for_batched_statements_go_in_whole_and_fast(db):
    """Lists go in binary: quotes, NULLs, bools (as integers), empty lists; 20,000 JSON payloads in well under 5 s."""
    payload = '{"note": "a \\"quoted\\" word, a back\\\\slash, {braces}, NULL"}'
    with db.tx() as conn:
        row = conn.execute("SELECT ?::text[], ?::bigint[], ?::bigint[], ?::float8[], ?::text[], ?::int[]",
                           ([payload, None, "", "NULL"], [1, None, 2**40], [True, False], [0.5, 2.0], [], [-5])).fetchone()
        assert list(row) == [[payload, None, "", "NULL"], [1, None, 2**40], [1, 0], [0.5, 2.0], [], [-5]]
        many = [payload * 20] * 20000
        started = time.perf_counter()
        n = conn.execute("SELECT count(*) FROM unnest(?::text[]) AS u(p) WHERE p = ?", (many, payload * 20)).fetchone()[0]
        took = time.perf_counter() - started
    assert n == 20000
    assert took < 5  # the text format's escaping took ~10 s for this on a loaded 2-CPU machine


def test_a_failing_transaction_is_rolled_back_whole(db):
    with pytest.raises(ZeroDivisionError), db.tx() as conn:
        conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("rolled", "back"))
        raise ZeroDivisionError
    assert db.one("SELECT 1 FROM settings WHERE name = 'rolled'") is None
    with db.tx() as conn:  # the connection is usable again
        conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("kept", "yes"))
    assert db.one("SELECT value FROM settings WHERE name = ?", ("kept",))["value"] == "yes"


def test_now_is_the_servers_clock(db):
    before = time.time()
    server = db.now()
    assert isinstance(server, float)
    assert before - 5 < server < time.time() + 5  # same host here; the point is where it is read
    assert db.now() >= server  # clock_timestamp(), not the transaction's start


def test_a_real_deadlock_is_retried_whole_and_both_transactions_commit(pg_url, db):
    with db.tx() as conn:
        conn.execute("CREATE TABLE deadlock (id bigint PRIMARY KEY, v bigint NOT NULL)")
        conn.execute("INSERT INTO deadlock VALUES (1, 0), (2, 0)")
    both_hold_one = threading.Barrier(2, timeout=10)
    runs: list[str] = []

    def work(name: str, first: int, second: int) -> None:
        database = _other(pg_url)
        try:
            for attempt in database.transactions(sleep=lambda s: None):
                with attempt as conn:
                    runs.append(name)
                    conn.execute("UPDATE deadlock SET v = v + 1 WHERE id = ?", (first,))
                    if runs.count(name) == 1:
                        both_hold_one.wait()
                    conn.execute("UPDATE deadlock SET v = v + 1 WHERE id = ?", (second,))
        finally:
            database.close()

    threads = [threading.Thread(target=work, args=("a", 1, 2)), threading.Thread(target=work, args=("b", 2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])  # the deadlock's victim ran twice
    assert [tuple(r) for r in db.query("SELECT id, v FROM deadlock ORDER BY id")] == [(1, 2), (2, 2)]


def test_retries_back_off_with_jitter_and_end_in_one_sentence(db):
    import psycopg

    slept: list[float] = []
    runs = 0
    with pytest.raises(DatabaseError) as caught:
        for attempt in db.transactions(tries=4, sleep=slept.append):
            with attempt as conn:
                runs += 1
                conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (f"try{runs}", "x"))
                raise psycopg.errors.SerializationFailure("could not serialize access")
    assert runs == 4 and len(slept) == 3 and all(0 <= s <= 0.5 for s in slept)
    assert str(caught.value) == (f"A transaction on the database {db.name} kept conflicting with others (deadlocks "
                                 "or serialization failures) and was given up after 4 tries; try again.")
    assert db.one("SELECT 1 FROM settings WHERE name LIKE 'try%'") is None  # every try rolled back


def test_transactions_runs_the_body_once_when_it_commits_and_lets_other_errors_through(db):
    runs = 0
    for attempt in db.transactions():
        with attempt as conn:
            runs += 1
            conn.execute("INSERT INTO settings (name, value) VALUES ('once', '1') ON CONFLICT DO NOTHING")
    assert runs == 1
    with pytest.raises(KeyError):
        for attempt in db.transactions():
            with attempt:
                raise KeyError("not a conflict")


def test_the_sqlite_database_offers_the_same_loop_as_one_try(tmp_path):
    from statusctl.storage.db import Database

    sqlite = Database.open(tmp_path / "one.db", create=True)
    try:
        runs = 0
        for attempt in sqlite.transactions():
            with attempt as conn:
                runs += 1
                conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
        assert runs == 1 and sqlite.one("SELECT value FROM settings WHERE name = 'a'")["value"] == "b"
    finally:
        sqlite.close()


def test_a_connection_closed_while_idle_is_replaced_at_the_next_transaction(pg_url, db):
    victim = _other(pg_url)
    try:
        pid = victim.one("SELECT pg_backend_pid()")[0]
        db.query("SELECT pg_terminate_backend(?)", (pid,))
        time.sleep(0.2)
        with victim.tx() as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        victim.close()


def test_a_read_that_finds_its_connection_dead_runs_again_on_a_new_one(pg_url, db):
    victim = _other(pg_url)
    try:
        pid = victim.one("SELECT pg_backend_pid()")[0]
        db.query("SELECT pg_terminate_backend(?)", (pid,))
        time.sleep(0.2)
        assert victim.one("SELECT pg_backend_pid()")[0] != pid
    finally:
        victim.close()


def test_after_a_server_restart_the_next_transaction_runs_on_a_new_connection():
    from ..pgcluster import start_cluster

    cluster = start_cluster()  # its own: the session's cluster is never stopped by a test
    try:
        db = PostgresDatabase.open(cluster.url(cluster.create_database()), create=True)
        try:
            with db.tx() as conn:
                conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("before", "restart"))
            cluster.restart()
            with db.tx() as conn:
                conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("after", "restart"))
            assert [r[0] for r in db.query("SELECT name FROM settings ORDER BY name")] == ["after", "before"]
        finally:
            db.close()
    finally:
        cluster.stop()


def test_a_stopping_controller_stops_waiting_for_a_lock(pg_url, db):
    holder = _other(pg_url)
    waiter = _other(pg_url)
    waiter.lock_wait = float("inf")
    try:
        with holder.tx() as hold:
            hold.execute("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
            threading.Timer(0.3, lambda: setattr(waiter, "lock_wait", 0.1)).start()
            start = time.monotonic()
            with pytest.raises(DatabaseError) as caught, waiter.tx() as conn:
                conn.execute("UPDATE meta SET value = value")
            assert time.monotonic() - start < 5  # not the 30 s busy timeout
        assert str(caught.value) == (f"The database {waiter.name} is locked by another transaction, and statusctl "
                                     "stopped waiting for it because it is stopping.")
        assert waiter.one("SELECT current_setting('lock_timeout')")[0] == "100ms"  # and waits no longer after
    finally:
        holder.close()
        waiter.close()


def test_importing_the_backend_does_not_import_psycopg_until_a_connection_is_opened(pg_url):
    code = ("import sys\n"
            "import statusctl.storage.postgres as pg\n"
            "assert 'psycopg' not in sys.modules, 'imported at module level'\n"
            f"pg.PostgresDatabase.open({pg_url!r}).close()\n"
            "assert 'psycopg' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
