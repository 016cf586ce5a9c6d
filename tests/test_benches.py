"""The benches still run: each script of bench/ at a tiny size, as a subprocess, to its end.

They are not tests of speed (their figures are measured by hand, see bench/README.md), but
code that only a bench calls breaks silently when an interface moves (`stack.release` once
took seqs, and growth.py went on passing them). Environment from the test (HOME, XDG_DATA_HOME,
STATUSCTL_DB in tmp_path), so no bench touches a real data directory.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .helpers import ROOT

BENCH = ROOT / "bench"
RUNS = {
    "apply": ["apply.py", "--orders", "60", "--items", "2", "--no-cli"],
    "drain": ["drain.py", "--records", "40", "--orders", "20", "--concurrency", "2", "--latencies", "0,50",
              "--serial-sample", "5", "--controllers", "2"],
    "growth": ["growth.py", "--big", "3000", "--drain", "40", "--repeat", "1", "--runs", "1"],
    "startup": ["startup.py", "--runs", "1"],
}


def _run(args: list[str], backends: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if args[0] != "startup.py":
        args = [*args, "--backends", backends]
    done = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"bench/{args[0]} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("bench", sorted(RUNS))
def test_a_bench_runs_to_its_end_on_sqlite(bench: str) -> None:
    out = _run(RUNS[bench], "sqlite")
    assert {"apply": "ratio floor/core", "drain": "controllers together",
            "growth": "drain, big / small", "startup": "statusctl --help"}[bench] in out, out


@pytest.mark.slow
@pytest.mark.parametrize("bench", ["apply", "drain", "growth"])
def test_a_bench_runs_to_its_end_on_both_backends(bench: str, pg_server: object) -> None:
    """`pg_server` only to skip where PostgreSQL cannot be had: a bench starts a cluster of its own."""
    out = _run(RUNS[bench], "sqlite,postgresql")
    assert {"apply": "core apply rate, PostgreSQL / SQLite", "drain": "on PostgreSQL",
            "growth": "PostgreSQL against SQLite"}[bench] in out, out
    if bench == "drain":
        assert "postgresql " in out.split("controllers together")[1], out
