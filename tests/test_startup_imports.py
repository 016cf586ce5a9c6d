"""psycopg is imported only when a PostgreSQL URL is used (issue 14, point 6).

Each command runs as a real process under `python -X importtime`, which logs every
module the interpreter imports, start-up and exit included: `statusctl --help` and
the SQLite commands must log no psycopg module, so they start as fast as before
PostgreSQL. The same probe on a command given a PostgreSQL URL must log psycopg,
so the probe itself is shown to see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT
from .pgcluster import free_port

SQLITE_COMMANDS = [
    ["--help"],
    ["stack", "status"],
    ["stack", "list", "--json"],
    ["stack", "run"],  # the cron drain: nothing due, it opens the database and the controller and stops
]


def imported(args: list[str], db: str, cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages `statusctl --db DB ARGS` imported, and how it ended."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STATUSCTL_DB": db}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "statusctl", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0]
             for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line}
    return names, done


@pytest.mark.parametrize("args", SQLITE_COMMANDS, ids=" ".join)
def test_help_and_sqlite_commands_do_not_import_psycopg(args: list[str], db_file: Path) -> None:
    names, done = imported(args, str(db_file), db_file.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "statusctl" in names, "the probe saw no import at all"
    assert "psycopg" not in names and "psycopg_binary" not in names


def test_a_postgresql_url_imports_psycopg(tmp_path: Path) -> None:
    """The probe's other side: given a URL (a port nothing listens on), statusctl loads psycopg to connect."""
    pytest.importorskip("psycopg")
    names, done = imported(["stack", "status"], f"postgresql://statusctl@127.0.0.1:{free_port()}/none", tmp_path)
    assert done.returncode != 0  # nothing listens there: one sentence, not a traceback
    assert "Traceback" not in done.stderr
    assert "psycopg" in names
