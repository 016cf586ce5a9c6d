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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..backends import POSTGRESQL, Place, sqlite_place

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


@pytest.fixture
def backend(request: pytest.FixtureRequest, target: Path | str, db_file: Path) -> Place:
    """The test's database on each backend in turn (tests.stackhelpers.target): its SQLite file, or a
    PostgreSQL database of the module as `statusctl init` leaves it (STATUSCTL_DB names it)."""
    if isinstance(target, Path):
        return sqlite_place(target)
    return Place(POSTGRESQL, target, db_file.parent, request.getfixturevalue("pg_server"))
