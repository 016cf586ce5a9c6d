"""Every test runs on its own SQLite file in tmp_path and never sees the user's data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "statusctl.db"
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
