"""Helpers for the CLI and core tests: a checked CLI runner, a ready-made shop, database dumps."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from statusctl.cli.main import app
from statusctl.core.init import ensure_initialized
from statusctl.storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"

# 33 bytes: base64 without '=' padding, so a leak cannot hide behind a split at '='.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"statusctl-test-webhook-key-012345").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"statusctl-test-second-key-4567890").decode()

# Orders of the two example files, and their SKUs.
CSV_ORDERS = {
    "1001": ["MUG-1", "TEE-L"],
    "1002": ["CAP-BLK"],
    "1003": ["MUG-1", "POSTER", "TEE-M"],
    "1004": ["BOOK-1"],
    "1005": ["PEN-3", "INK-B"],
    "1006": ["TEE-S"],
}
JSON_ORDERS = {"2001": ["MUG-1", "BOOK-2"], "2002": ["CAP-BLK"]}

# Rich wraps tables at 80 columns; wide enough that no cell is folded.
_ENV = {"COLUMNS": "300", "NO_COLOR": "1"}


def cli(*args: str | os.PathLike[str], code: int = 0, input: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    """Run `statusctl ARGS` in-process and assert the exit code (and no traceback)."""
    runner = CliRunner()
    result = runner.invoke(app, [str(a) for a in args], input=input, env={**_ENV, **(env or {})})
    detail = f"statusctl {' '.join(map(str, args))}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unexpected exception {result.exception!r}\n{detail}") from result.exception
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{detail}"
    if code not in (0, 2):
        assert "Traceback" not in result.output, detail
    return result


def cli_json(*args: str | os.PathLike[str], code: int = 0) -> Any:
    """Run a read command with --json; stdout must be exactly one JSON document."""
    result = cli(*args, "--json", code=code)
    return json.loads(result.stdout)


def error_of(*args: str | os.PathLike[str], code: int = 1) -> str:
    """Run a command that must fail; return its stderr (one sentence, nothing on stdout)."""
    result = cli(*args, code=code)
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, f"one line expected:\n{result.stderr}"
    return result.stderr


def updates_on() -> None:
    cli("config", "set", "UseStatusUpdates", "true")


def add_webhook_store(name: str = "web", secret: str = WEBHOOK_SECRET) -> None:
    cli("stores", "add", name, "--cart", "webhook", "--url", "http://127.0.0.1:9/hook",
        "--secret", f"secret={secret}")


def setup_shop(*, updates: bool = True) -> None:
    """init, UseStatusUpdates on, a webhook store `web`, both example order files imported."""
    cli("init")
    if updates:
        updates_on()
    add_webhook_store()
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "web")


def open_db(path: Path | None = None, *, init: bool = True) -> Database:
    """The test's database (STATUSCTL_DB), opened for direct core calls (defaults loaded)."""
    db = Database.open(path or Path(os.environ["STATUSCTL_DB"]))
    if init:
        ensure_initialized(db)
    return db


def dump(path: Path | None = None) -> list[str]:
    """The whole database as SQL text, read through a fresh connection (sees the WAL)."""
    path = Path(path or os.environ["STATUSCTL_DB"])
    assert path.exists(), f"{path} does not exist (dump would create it)"
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def show(order: str) -> dict[str, Any]:
    data: dict[str, Any] = cli_json("orders", "show", order)
    return data


def stack(**filters: str) -> list[dict[str, Any]]:
    args: list[str] = []
    for key, value in filters.items():
        args += [f"--{key}", value]
    rows: list[dict[str, Any]] = cli_json("stack", "list", *args)
    return rows


def payload_of(record_id: str) -> dict[str, Any]:
    """The stored payload of one stack record."""
    conn = sqlite3.connect(os.environ["STATUSCTL_DB"])
    try:
        row = conn.execute("SELECT payload FROM stack WHERE uid = ?", (record_id,)).fetchone()
    finally:
        conn.close()
    assert row is not None, f"no record {record_id}"
    data: dict[str, Any] = json.loads(row[0])
    return data


def count(table: str, where: str = "1 = 1", params: tuple[object, ...] = ()) -> int:
    conn = sqlite3.connect(os.environ["STATUSCTL_DB"])
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0])
    finally:
        conn.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
