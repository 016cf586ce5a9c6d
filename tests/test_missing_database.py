"""Only `init` (and `setup`, `demo`) create a database: a mistyped --db / STATUSCTL_DB is refused.

Before, `STATUSCTL_DB=…/c.dbb statusctl stack run --json` printed `"ok": true`
and created an empty c.dbb and its folders, so a cron drain with a typo
passed for ever; a `postgresql://…` value became folders named `postgresql:`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .helpers import EXAMPLES, cli, error_of
from .pgcluster import free_port

pytestmark = pytest.mark.no_database

# Every command that opens the main database, with arguments that would otherwise get it going.
COMMANDS = [
    ["config", "list"], ["config", "get", "UseStatusUpdates"], ["config", "set", "UseStatusUpdates", "true"],
    ["labels", "list"], ["labels", "add", "Awaiting Pickup"], ["labels", "remove", "Awaiting Pickup"],
    ["events", "list"], ["events", "set", "order-approved", "--fire"], ["events", "defaults", "--yes"],
    ["stores", "add", "web", "--cart", "webhook", "--url", "http://127.0.0.1:9/hook", "--secret", "secret=x"],
    ["stores", "list"], ["stores", "show", "web"], ["stores", "remove", "web", "--yes"], ["stores", "test", "web"],
    ["oss", "set", "web"],
    ["orders", "import", str(EXAMPLES / "orders.csv"), "--store", "web"], ["orders", "list"], ["orders", "show", "1001"],
    ["fire", "order-approved", "1001"], ["ship", "1001"], ["cancel", "1001"], ["apply", str(EXAMPLES / "apply.csv")],
    ["stack", "status", "--check"], ["stack", "list"], ["stack", "history"], ["stack", "run", "--json"],
    ["stack", "run", "--watch"], ["stack", "retry", "--failed"], ["stack", "drop", "--failed", "--yes"],
    ["stack", "top", "--once"],
]


def _nothing_created(root: Path) -> None:
    assert sorted(p.name for p in root.iterdir()) == [], "a command created files or folders"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_mistyped_database_is_refused_and_nothing_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               args: list[str]) -> None:
    root = tmp_path / "typo"
    root.mkdir()
    typo = root / "sub" / "c.dbb"
    monkeypatch.setenv("STATUSCTL_DB", str(typo))
    message = error_of(*args)
    assert f"There is no database at {typo}" in message and "`statusctl init`" in message
    _nothing_created(root)
    # --db the same way.
    message = error_of("--db", str(typo), *args)
    assert str(typo) in message and "statusctl init" in message
    _nothing_created(root)


def test_init_creates_it_and_then_the_commands_work(tmp_path: Path) -> None:
    path = tmp_path / "new" / "statusctl.db"
    assert cli("--db", path, "init").stdout.strip() == str(path)
    assert cli("--db", path, "stack", "run", "--json").stdout.count('"ok": true') == 1


@pytest.mark.parametrize("url", ["postgresql://bob:hunter2@127.0.0.1:{port}/shop",
                                 "postgres://127.0.0.1:{port}/shop?password=hunter2"])
def test_a_postgresql_url_is_the_postgresql_backend_never_a_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       url: str) -> None:
    """With no server at the URL, every command says so in one sentence, the password masked, no folder made."""
    url = url.format(port=free_port())
    monkeypatch.chdir(tmp_path)
    message = error_of("--db", url, "stack", "status")
    assert "Cannot reach the PostgreSQL server" in message and "--db" in message and "hunter2" not in message
    monkeypatch.setenv("STATUSCTL_DB", url)
    for args in (["init"], ["stack", "run", "--json"]):
        message = error_of(*args)
        assert "Cannot reach the PostgreSQL server" in message and "127.0.0.1" in message, message
        assert "hunter2" not in message, "the URL's password was shown"
    assert list(tmp_path.iterdir()) == [], "the URL became folders"


@pytest.mark.parametrize(("url", "secret"), [
    ("postgresql://app:s3cr@t!pw@127.0.0.1:{port}/shop", "t!pw"),  # a raw @ in the password: refused before libpq
    ("postgresql://app:pass/w0rd@127.0.0.1:{port}/shop", "w0rd"),  # a raw / in the password
    ("postgresql://app:hunter2@127.0.0.1:{port}/shop", "hunter2"),
    ("postgresql://127.0.0.1:{port}/shop?sslpassword=hunter2", "hunter2"),
])
def test_no_part_of_a_database_urls_credentials_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          url: str, secret: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STATUSCTL_DB", url.format(port=free_port()))
    message = error_of("stack", "run", "--json")
    assert "127.0.0.1" in message and ("percent-encode" in message or "Cannot reach" in message), message
    assert secret not in message, message


@pytest.mark.parametrize("url", ["sqlite:///tmp/x.db", "https://example.com/statusctl.db", "file://localhost/x.db"])
def test_any_other_url_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    message = error_of("--db", url, "init")
    assert "URL, not a database; give the path of a SQLite file or a postgresql:// URL" in message, message
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_or_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert "an empty file" in error_of("--db", empty, "stack", "status")
    assert empty.read_bytes() == b""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    assert "no statusctl tables" in error_of("--db", other, "orders", "list")
    assert other.read_bytes() == before


def test_a_deleted_databases_wal_is_never_joined_by_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "statusctl.db"
    wal = Path(f"{path}-wal")
    wal.write_bytes(b"left by a database that was deleted while in use")
    for args in (["init"], ["stack", "status"], ["stack", "run"]):
        message = error_of("--db", path, *args)
        assert "is missing but its statusctl.db-wal is still there" in message, message
    assert not path.exists()
    wal.unlink()
    Path(f"{path}-shm").write_bytes(b"\0" * 32768)
    assert "statusctl.db-shm is still there" in error_of("--db", path, "init")
    assert not path.exists()


def test_oss_serve_refuses_a_missing_statusctl_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    root = tmp_path / "typo"
    root.mkdir()
    monkeypatch.setenv("STATUSCTL_DB", str(root / "zzz" / "none.db"))
    monkeypatch.setenv("STATUSCTL_OSS_SECRET", "whsec_" + "A" * 43)
    with socket.socket() as busy:  # were the database not checked first, serve would stop here, not serve
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        message = error_of("oss", "serve", "--port", str(busy.getsockname()[1]))
    assert f"There is no database at {root / 'zzz' / 'none.db'}" in message and "statusctl init" in message
    _nothing_created(root)


def test_the_oss_database_is_created_only_in_a_folder_that_exists(tmp_path: Path) -> None:
    from statusctl.domain.errors import DatabaseError
    from statusctl.storage.oss import open_oss_database as connect

    missing = tmp_path / "no" / "such" / "statusctl-oss.db"
    with pytest.raises(DatabaseError, match=r"the folder .*no/such does not exist"):
        connect(missing)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatabaseError, match="is a directory"):
        connect(tmp_path)
    connect(tmp_path / "statusctl-oss.db").close()
    assert (tmp_path / "statusctl-oss.db").is_file()


@pytest.mark.parametrize("value", ["file:/tmp/statusctl-test/x.db", "file:x.db", "sqlite:x.db", "FILE:x.db?mode=rw"])
def test_a_uri_scheme_without_slashes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    message = error_of("--db", value, "init")
    assert "reads as a URI, not a database file" in message and "--db" in message, message
    monkeypatch.setenv("STATUSCTL_DB", value)
    assert "STATUSCTL_DB" in error_of("stack", "status")
    assert list(tmp_path.iterdir()) == [], "the URI became folders"


def test_a_windows_drive_is_a_path_not_a_scheme() -> None:
    from statusctl.core import paths

    assert paths.db_path("C:\\data\\statusctl.db") == Path("C:\\data\\statusctl.db")
    assert paths.database_url_problem("D:/data/x.db", "--db") is None


def test_an_empty_database_value_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "--db is empty" in error_of("--db", "", "init")
    for value in ("", "  "):
        monkeypatch.setenv("STATUSCTL_DB", value)
        message = error_of("init")
        assert "STATUSCTL_DB is empty" in message and "unset STATUSCTL_DB" in message, message
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_not_a_database_file(tmp_path: Path) -> None:
    for args in (["init"], ["stack", "status"]):
        message = error_of("--db", tmp_path, *args)
        assert f"{tmp_path} is a directory, not a database file" in message, message
        assert "unable to open" not in message
    assert list(tmp_path.iterdir()) == []
