"""Every PostgreSQL fault statusctl names, produced for real on the test cluster: one sentence
each, naming the database by its masked URL, never showing a password."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from statusctl.domain.errors import DatabaseError, DiskFull
from statusctl.domain.urls import mask_db_url as masked
from statusctl.storage import pgerrors, postgres
from statusctl.storage.postgres import PostgresDatabase

from ..helpers import ROOT
from ..pgcluster import free_port


def _refusal(url: str, **kwargs) -> str:
    with pytest.raises(DatabaseError) as caught:
        PostgresDatabase.open(url, **kwargs).close()
    return str(caught.value)


def _secret_free(message: str, *secrets: str) -> str:
    for secret in secrets:
        assert secret not in message and quote(secret, safe="") not in message, message
    return message


def test_a_server_that_is_down_or_unreachable(pg_server):
    url = f"postgresql://statusctl_pw:{quote(pg_server.password, safe='')}@127.0.0.1:{free_port()}/nothing"
    message = _secret_free(_refusal(url), pg_server.password)
    assert message.startswith(f"Cannot reach the PostgreSQL server of {masked(url)} (")
    assert "Connection refused" in message
    assert message.endswith("check that it is running, and the host and port in the URL.")


def test_a_wrong_password(pg_server, pg_url):
    wrong = "wr0ng@pass/word"
    url = pg_server.url(pg_url.rsplit("/", 1)[1], "statusctl_pw", wrong)
    message = _secret_free(_refusal(url), wrong, pg_server.password)
    assert message == (f"The PostgreSQL server refused to let statusctl log in to {masked(url)} (authentication "
                       'failed: password authentication failed for user "statusctl_pw"); check the user and '
                       "password in the URL, PGPASSWORD or ~/.pgpass.")


def test_a_database_that_does_not_exist_says_how_to_create_it(pg_server):
    url = pg_server.url("no_such_db", "statusctl_pw", pg_server.password)
    message = _secret_free(_refusal(url, create=True), pg_server.password)
    assert message == (f"The PostgreSQL database {masked(url)} does not exist; create it first (`createdb no_such_db` "
                       "on the server, or ask your DBA): `statusctl init` creates statusctl's tables, not the database.")


def test_too_many_connections(pg_server, pg_url):
    pg_server.sql("DO $$ BEGIN CREATE ROLE statusctl_full LOGIN CONNECTION LIMIT 0; "
                  "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    url = pg_server.socket_url(pg_url.rsplit("/", 1)[1], "statusctl_full")
    assert _refusal(url) == (f"The PostgreSQL server of {url} accepts no more connections (too many connections); "
                             "close some, or raise max_connections or the role's connection limit, and try again.")


def test_a_database_without_statusctl_tables_is_refused_unless_creating(pg_server):
    url = pg_server.url(pg_server.create_database("empty"))
    assert _refusal(url) == (f"{url} holds no statusctl database (no statusctl tables); check --db / STATUSCTL_DB, "
                             "or create the database with `statusctl init`.")
    PostgresDatabase.open(url, create=True).close()
    PostgresDatabase.open(url).close()  # now it is one


def test_a_url_libpq_cannot_read():
    url = "postgresql://u:hunter2@localhost/db?no_such_option=1"
    assert _secret_free(_refusal(url), "hunter2") == (
        "postgresql://u:••••••@localhost/db?no_such_option=1 is not a valid PostgreSQL URL; give one like "
        "postgresql://user@host:5432/dbname (check --db / STATUSCTL_DB).")


def test_a_read_only_database(pg_server):
    dbname = pg_server.create_database("ro")
    url = pg_server.url(dbname)
    PostgresDatabase.open(url, create=True).close()
    pg_server.sql(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    db = PostgresDatabase.open(url)  # reading is fine (every migration is applied already)
    try:
        with pytest.raises(DatabaseError) as caught, db.tx() as conn:
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
    finally:
        db.close()
    assert str(caught.value) == (f"The PostgreSQL database {url} is read-only (a standby, or a database or "
                                 "transaction set read-only), and statusctl must write it; give the URL of the "
                                 "primary.")


def test_a_lock_held_past_the_busy_timeout(pg_url, monkeypatch):
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.3")
    holder, waiter = PostgresDatabase.open(pg_url, create=True), PostgresDatabase.open(pg_url)
    try:
        with holder.tx() as hold:
            hold.execute("LOCK TABLE settings IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseError) as caught, waiter.tx() as conn:
                conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
    finally:
        holder.close()
        waiter.close()
    assert str(caught.value) == (f"The database {pg_url} stayed locked by another transaction for more than 0.3 s; "
                                 "try again when it is free.")


def test_a_statement_past_the_statement_timeout(pg_url, monkeypatch):
    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_S", 0.2)
    monkeypatch.setenv("STATUSCTL_BUSY_TIMEOUT", "0.05")
    db = PostgresDatabase.open(pg_url, create=True)
    try:
        with pytest.raises(DatabaseError) as caught:
            db.query("SELECT pg_sleep(3)")
        assert db.one("SELECT 1")[0] == 1  # the connection is fine afterwards
    finally:
        db.close()
    assert str(caught.value) == (f"A statement on the database {pg_url} ran for more than 0.2 s and was cancelled "
                                 "(statement_timeout); try again when the server is less busy.")


def test_a_connection_lost_mid_transaction_rolls_back_and_the_next_one_reconnects(pg_url):
    db, killer = PostgresDatabase.open(pg_url, create=True), PostgresDatabase.open(pg_url)
    try:
        with pytest.raises(DatabaseError) as caught, db.tx() as conn:
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("lost", "x"))
            killer.query("SELECT pg_terminate_backend(?)", (conn.execute("SELECT pg_backend_pid()").fetchone()[0],))
            conn.execute("SELECT 1")
        with db.tx() as conn:
            assert conn.execute("SELECT count(*) FROM settings WHERE name = 'lost'").fetchone()[0] == 0
    finally:
        db.close()
        killer.close()
    assert str(caught.value) == (f"The connection to the PostgreSQL database {pg_url} was lost during a transaction "
                                 "(the server restarted or closed it), so the change was rolled back; try again.")


def test_a_transaction_left_idle_past_the_idle_timeout(pg_url, monkeypatch):
    monkeypatch.setattr(postgres, "IDLE_TIMEOUT_S", 0.2)
    db = PostgresDatabase.open(pg_url, create=True)
    try:
        with pytest.raises(DatabaseError) as caught, db.tx() as conn:
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("idle", "x"))
            time.sleep(0.6)  # a frozen client
            conn.execute("SELECT 1")
        assert db.one("SELECT count(*) FROM settings WHERE name = 'idle'")[0] == 0  # on a new connection
    finally:
        db.close()
    assert str(caught.value) == (f"The PostgreSQL server of {pg_url} ended a transaction of statusctl's that stayed "
                                 "idle for more than 0.2 s (idle_in_transaction_session_timeout), so the change was "
                                 "rolled back; try again.")


@contextlib.contextmanager
def _tiny_tablespace(pg_server):
    """A tablespace on a 1 MB tmpfs (root only), so that a table really fills its disk."""
    where = Path(tempfile.mkdtemp(prefix="pgfull", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                             capture_output=True, check=False).returncode == 0 if shutil.which("mount") else False
    if not mounted:
        where.rmdir()
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    try:
        shutil.chown(where, "postgres", "postgres")
        name = f"full_{where.name[6:].lower()}"
        pg_server.sql(f"CREATE TABLESPACE {name} LOCATION '{where}'")
        yield name
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def test_a_full_disk(pg_server, pg_url):
    db = PostgresDatabase.open(pg_url, create=True)
    try:
        with _tiny_tablespace(pg_server) as space:
            with db.tx() as conn:
                conn.execute(f"CREATE TABLE filler (pad text) TABLESPACE {space}")
            with pytest.raises(DiskFull) as caught, db.tx() as conn:
                conn.execute("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 5000)")
            with db.tx() as conn:
                conn.execute("DROP TABLE filler")
            pg_server.sql(f"DROP TABLESPACE {space}")
    finally:
        db.close()
    assert str(caught.value) == (f"The disk of the PostgreSQL server holding {pg_url} is full, so statusctl cannot "
                                 "write its database (the last change was not saved); free some space on the server "
                                 "and try again.")


def test_permission_denied_on_statusctls_tables(pg_server, pg_url):
    PostgresDatabase.open(pg_url, create=True).close()
    url = pg_server.url(pg_url.rsplit("/", 1)[1], "statusctl_pw", pg_server.password)
    message = _secret_free(_refusal(url), pg_server.password)
    assert message == (f"The PostgreSQL role of {masked(url)} may not use statusctl's tables (permission denied for "
                       "table migrations); ask the DBA to grant it their use, or connect as their owner.")


def test_without_psycopg_the_sentence_says_what_to_install(pg_url):
    code = ("import sys\n"
            "sys.modules['psycopg'] = None\n"
            "from statusctl.storage.postgres import PostgresDatabase\n"
            "from statusctl.domain.errors import DatabaseError\n"
            "try:\n"
            f"    PostgresDatabase.open({pg_url!r})\n"
            "except DatabaseError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == pgerrors.NEEDS_PSYCOPG


def test_the_password_is_in_no_message_repr_or_attribute_shown(pg_server, pg_url):
    dbname = pg_url.rsplit("/", 1)[1]
    pg_server.sql(f'GRANT ALL ON DATABASE "{dbname}" TO statusctl_pw')
    with PostgresDatabase.open(pg_url, create=True).tx() as conn:
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO statusctl_pw")
    url = pg_server.url(dbname, "statusctl_pw", pg_server.password)
    db = PostgresDatabase.open(url)
    texts = [db.name, repr(db)]
    try:
        with pytest.raises(DatabaseError) as caught, db.tx() as conn:  # no right to write: a sentence
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
        texts.append(str(caught.value))
        texts.append(str(_refusal(url.replace(dbname, "missing_db"))))
    finally:
        db.close()
    for text in texts:
        _secret_free(text, pg_server.password)
    assert all("statusctl_pw:••••••@" in text for text in texts)


def test_a_database_read_only_for_a_while_is_written_again_once_lifted(pg_server):
    """A session keeps the read-only default it connected with: the fault drops it, so the same
    Database (a watcher's) writes on a fresh session once the database is writable again."""
    dbname = pg_server.create_database("ro2")
    url = pg_server.url(dbname)
    PostgresDatabase.open(url, create=True).close()
    pg_server.sql(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    db = PostgresDatabase.open(url)
    try:
        with pytest.raises(DatabaseError, match="read-only"), db.tx() as conn:
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
        pg_server.sql(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = off')
        with db.tx() as conn:
            conn.execute("INSERT INTO settings (name, value) VALUES (?, ?)", ("a", "b"))
        assert db.one("SELECT value FROM settings WHERE name = 'a'")[0] == "b"
    finally:
        db.close()
