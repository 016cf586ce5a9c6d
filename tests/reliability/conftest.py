"""The reliability suites' figures: shown at the end of every pytest run and saved as JSON.

A test records what it measured with the `figures` fixture; the numbers are
printed in a "reliability figures" section of the terminal summary (so CI logs
show them without `-s`) and written to test-artifacts/reliability.json, one
entry per suite, each with when and where it was measured. A suite that runs on
both backends (the `backend` fixture) names its figures after the backend, e.g.
"crash (postgresql)".
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..backends import KINDS, POSTGRESQL, SQLITE, Place, postgres_place, sqlite_place

if TYPE_CHECKING:
    from ..pgcluster import Cluster

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability.json"
_MEASURED: dict[str, dict[str, Any]] = {}

Figures = Callable[[str, dict[str, Any]], None]


@pytest.fixture
def figures() -> Figures:
    """`figures(suite, {name: value})`: keep a suite's figures for the summary and the artifact."""

    def record(suite: str, values: dict[str, Any]) -> None:
        _MEASURED[suite] = {
            **values,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        }

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _MEASURED:
        return
    saved: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(ARTIFACT.read_text())
    saved.update(_MEASURED)
    try:
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        terminalreporter.line(f"(could not write {ARTIFACT}: {exc})")
    terminalreporter.section("reliability figures")
    for suite, values in _MEASURED.items():
        shown = ", ".join(f"{k} {v}" for k, v in values.items() if k not in ("measured_at", "machine"))
        terminalreporter.line(f"{suite}: {shown}")
    terminalreporter.line(f"(saved to {ARTIFACT})")


@pytest.fixture(scope="session")
def _pg_initialized(pg_server: Cluster) -> str:
    """A PostgreSQL database as `statusctl init` leaves it, made once: the template of every test's database."""
    from statusctl.core.init import initialize

    name = pg_server.create_database("init")
    db = Place(POSTGRESQL, pg_server.url(name), Path("."), pg_server).open()
    try:
        initialize(db)
    finally:
        db.close()  # CREATE DATABASE … TEMPLATE needs it free of connections
    return name


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, db_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    """The test's database on each backend in turn: SQLite's `db_file`, or a fresh PostgreSQL database.

    Both start as `statusctl init` leaves them, and STATUSCTL_DB names them (so
    in-process commands and child processes use them too).
    """
    if request.param == SQLITE:
        yield sqlite_place(db_file)
        return
    cluster = request.getfixturevalue("pg_server")
    place = postgres_place(cluster, request.getfixturevalue("_pg_initialized"), db_file.parent)
    monkeypatch.setenv("STATUSCTL_DB", place.arg)
    try:
        yield place
    finally:
        place.drop()
