"""Every test runs on its own SQLite file in tmp_path and never sees the user's data directory.

Only `init`, `setup` and `demo` create a database, so each test starts with
one as `statusctl init` leaves it (a copy of a template made once per run);
a test marked `no_database` starts without it, to see what a command does
when there is none. PostgreSQL tests take `pg_url`: a fresh database per test
module on one throwaway cluster per session (`pg_server`, tests/pgcluster.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Both backends' database fixture (`target`: a SQLite file, then a PostgreSQL URL; `pg_target`: the
# latter only) for every module.
from .stackdb import pg_initialized, pg_target, target  # noqa: F401

if TYPE_CHECKING:
    from .pgcluster import Cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_database: the test starts with no database at STATUSCTL_DB")


@pytest.fixture(scope="session")
def _initialized_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from statusctl.core.init import initialize
    from statusctl.storage.db import Database

    path = tmp_path_factory.mktemp("initialized") / "statusctl.db"
    db = Database.open(path, create=True)
    try:
        initialize(db)
    finally:
        db.close()  # the last connection checkpoints the WAL into the file and removes it
    return path


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              _initialized_template: Path) -> Path:
    db = tmp_path / "statusctl.db"
    if request.node.get_closest_marker("no_database") is None:
        shutil.copy2(_initialized_template, db)  # copy2 keeps its mode 0600
    monkeypatch.setenv("STATUSCTL_DB", str(db))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from statusctl.cli import common

    common.set_db_option(None)
    return db


@pytest.fixture
def db_file(_isolated: Path) -> Path:
    """The test's database path (STATUSCTL_DB points at it)."""
    return _isolated


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole session (tests/pgcluster.py); skips where none can be had."""
    from .pgcluster import Unavailable, start_cluster

    try:
        cluster = start_cluster()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def pg_url(pg_server: Cluster) -> str:
    """A fresh, empty database on the session's cluster for this test module: its URL (no password)."""
    return pg_server.url(pg_server.create_database())
