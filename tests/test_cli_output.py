"""What an operator sees on the command line (issue 13): a closed pipe, --version, unknown-store filters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statusctl import __version__
from statusctl.storage.db import Database
from statusctl.storage.stack import drop

from .helpers import ROOT, cli, error_of, setup_shop
from .stackhelpers import STORE, fill, setup_db


def statusctl(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "statusctl", "--db", str(db), *args]


@pytest.fixture
def busy(db_file: Path) -> Path:
    """Records on the stack and dropped ones in the history, so every listing has rows."""
    setup_db(db_file, {STORE: "http://127.0.0.1:9/hook"})
    dropped = [uid for uids in fill(db_file, records=50, orders=50, prefix="D").values() for uid in uids]
    fill(db_file, records=50, orders=50, prefix="Q")
    db = Database.open(db_file)
    try:
        drop(db, dropped)
    finally:
        db.close()
    return db_file


@pytest.mark.parametrize("args", [
    ["stack", "history"], ["stack", "history", "--json"], ["stack", "list"], ["stack", "list", "--json"],
    ["orders", "list"], ["orders", "list", "--json"], ["events", "list"], ["stack", "status"],
])
def test_a_closed_pipe_ends_quietly(busy: Path, args: list[str]):
    """`statusctl stack history | head -1`: the reader has what it wanted; no error, no traceback.

    The reading end is closed before the command starts, so every write meets a closed pipe
    (with `head -1` whether the writer is still writing depends on the pipe's size)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run(statusctl(busy, *args), stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode in (0, 141), (r.returncode, r.stderr)
    assert r.stderr == b""


def test_version_is_cheap(tmp_path: Path):
    probe = ("import sys\nfrom statusctl.cli.main import run\nsys.argv = ['statusctl', '--version']\n"
             "try:\n    run()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted(m for m in ('rich', 'httpx', 'sqlite3') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STATUSCTL_DB": str(tmp_path / "none.db")}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"statusctl {__version__}"
    assert lines[1] == "['sqlite3']" or lines[1] == "[]", "--version must not load rich or httpx"
    assert not (tmp_path / "none.db").exists(), "--version opens no database"


def test_filters_naming_an_unknown_store_are_refused():
    setup_shop()
    for args in (["orders", "list", "--store", "shp"], ["stack", "list", "--store", "shp"],
                 ["stack", "history", "--store", "shp"], ["orders", "list", "--store", "shp", "--json"]):
        err = error_of(*args)
        assert "Unknown store 'shp'" in err and "stores list" in err, args
    # The known store still filters.
    assert "1001" in cli("orders", "list", "--store", "web").stdout
    assert cli("stack", "history", "--store", "web").stdout.splitlines()[0] == "No attempts recorded."


def test_drop_and_retry_naming_nothing_are_usage_errors():
    setup_shop()
    for command in ("drop", "retry"):
        r = cli("stack", command, code=2)
        assert "Name the records" in r.stderr and r.stdout == ""
    assert cli("stack", "drop", "--failed").stdout.strip() == "Nothing to drop."
