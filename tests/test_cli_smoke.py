"""The command line as a whole: start-up, lazy heavy imports, help, exit codes, one JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, cli, setup_shop

COMMANDS = ["init", "config", "labels", "events", "carts", "stores", "oss", "orders", "fire", "ship", "cancel",
            "apply", "stack", "demo"]


def python(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def loaded_after(code: str) -> set[str]:
    """Which of httpx / rich / pydantic a fresh interpreter has loaded after running `code`."""
    probe = (
        f"{code}\n"
        "import sys, json\n"
        "print(json.dumps(sorted(m for m in ('httpx', 'rich', 'pydantic') if m in sys.modules)))\n"
    )
    out = python("-c", probe).stdout.strip().splitlines()[-1]
    return set(json.loads(out))


def test_python_m_statusctl_help():
    result = python("-m", "statusctl", "--help")
    assert "Usage:" in result.stdout
    for command in COMMANDS:
        assert f"  {command} " in result.stdout, command
    assert result.stderr == ""


def test_python_m_statusctl_without_arguments_shows_usage():
    result = python("-m", "statusctl", check=False)
    assert "Usage:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_importing_the_cli_loads_neither_httpx_nor_rich():
    assert loaded_after("import statusctl.cli") == set()
    assert loaded_after("import statusctl.cli.main") == set()


def test_help_loads_neither_httpx_nor_rich():
    code = (
        "import sys\n"
        "from statusctl.cli.main import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert loaded_after(code) == set()


@pytest.mark.parametrize("args", [["stack", "status", "--json"], ["config", "get", "UseStatusUpdates"]])
def test_light_commands_do_not_load_httpx(args: list[str], db_file: Path):
    from statusctl.storage.db import Database

    Database.open(db_file).close()  # stack status reads an existing database only
    code = (
        "from statusctl.cli.main import app\n"
        "try:\n"
        f"    app({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    assert "httpx" not in loaded_after(code)


def test_errors_in_a_subprocess_are_one_sentence_without_traceback(tmp_path: Path):
    result = python("-m", "statusctl", "--db", str(tmp_path / "x.db"), "labels", "remove", "Order Shipped",
                    check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_the_installed_console_script_runs(tmp_path: Path):
    script = Path(sys.executable).with_name("statusctl")
    if not script.exists():
        pytest.skip("no console script next to this interpreter")
    result = subprocess.run([str(script), "--db", str(tmp_path / "y.db"), "init"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "y.db")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str):
    result = cli(command, "--help")
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("stores", "add", "--help"), ("stack", "run", "--help"), ("events", "set", "-h"), ("orders", "import", "-h")],
)
def test_subcommand_help(args: tuple[str, ...]):
    assert "Usage:" in cli(*args).stdout


def test_usage_errors_exit_2():
    assert cli("no-such-command", code=2).exit_code == 2
    assert cli("fire", code=2).exit_code == 2
    assert cli("labels", "list", "--bogus", code=2).exit_code == 2


def test_read_commands_print_one_json_document_and_nothing_else():
    setup_shop()
    cli("ship", "1001", "--tracking", "T1", "--carrier", "UPS")
    for args in (["config", "list"], ["config", "get", "StackAlertAge"], ["labels", "list"], ["events", "list"],
                 ["carts"], ["stores", "list"], ["stores", "show", "web"], ["orders", "list"],
                 ["orders", "show", "1001"], ["stack", "list"], ["stack", "status"], ["stack", "history"],
                 ["fire", "order-approved", "1002"], ["ship", "1003", "--item", "POSTER:1"],
                 ["cancel", "1006"]):
        result = cli(*args, "--json")
        json.loads(result.stdout)
        assert result.stderr == "", args


def _every_help_path() -> list[tuple[str, ...]]:
    """Every command's path, sub-commands of every group included (built as `statusctl` builds them)."""
    from statusctl.cli.main import _LAZY, _lazy_command

    paths: list[tuple[str, ...]] = [("init",)]
    for name in _LAZY:
        subs = list(getattr(_lazy_command(name), "commands", {}))  # a single command has none
        paths += [(name, sub) for sub in subs] if subs else [(name,)]
    return paths


def test_option_values_read_like_clicks_in_every_help():
    """Typer 0.28 writes `--store <str>`, `--limit <int range>`; help says TEXT, INTEGER or a name."""
    import re

    paths = _every_help_path()
    assert ("stack", "run") in paths and ("orders", "list") in paths and ("ship",) in paths
    for path in paths:
        text = cli(*path, "--help").stdout
        assert not re.search(r"<(str|int|float|boolean|text|path|filename|uuid|datetime)[a-z ]*>", text), (path, text)
    run = " ".join(cli("stack", "run", "--help").stdout.split())
    assert "--limit INTEGER" in run and "--store TEXT" in run
    assert "--store STORE" in " ".join(cli("orders", "list", "--help").stdout.split())
