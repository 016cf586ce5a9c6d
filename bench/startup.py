"""Start-up time of the CLI against a bare interpreter, measured in the same run.

    python bench/startup.py [--runs 15]

Runs each command as a subprocess `--runs` times (after one warm-up run each,
so the database exists and the OS caches are warm), interleaved so that a
burst of load on the machine hits every command alike, and prints the median
wall time of each and its ratio to `python -c "import sqlite3"`. The database
is a fresh one in a temporary directory (STATUSCTL_DB), and so is the bytecode
cache (PYTHONPYCACHEPREFIX), so that start-up is measured with compiled
modules, as installed. Goal: every statusctl command under 100 ms median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MS = 100.0


def commands(python: str) -> dict[str, list[str]]:
    # The console script, as operators and cron run it; `python -m statusctl` adds runpy.
    script = Path(python).with_name("statusctl")
    cli = [str(script)] if script.exists() else [python, "-m", "statusctl"]
    return {
        'python -c "import sqlite3"': [python, "-c", "import sqlite3"],
        "statusctl stack status --json": [*cli, "stack", "status", "--json"],
        "statusctl --help": [*cli, "--help"],
    }


def wall(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    cmds = commands(sys.executable)
    with tempfile.TemporaryDirectory(prefix="statusctl-startup-") as tmp:
        env = {**os.environ, "STATUSCTL_DB": str(Path(tmp) / "statusctl.db")}
        # Measure what an installed statusctl does: with compiled bytecode. A pycache
        # prefix of our own keeps it out of the source tree (and honours nothing
        # like PYTHONDONTWRITEBYTECODE=1 left in the environment).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        times: dict[str, list[float]] = {name: [] for name in cmds}
        # `stack status` reads an existing database only.
        subprocess.run([*cmds["statusctl --help"][:-1], "init"], env=env, check=True, capture_output=True)
        for argv in cmds.values():
            wall(argv, env)  # warm-up: compiled bytecode, warm OS caches
        for _ in range(args.runs):
            for name, argv in cmds.items():
                times[name].append(wall(argv, env))
    base = statistics.median(times['python -c "import sqlite3"'])
    print(f"{args.runs} runs each, medians ({' '.join(cmds['statusctl --help'][:-1])}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus):")
    for name, values in times.items():
        med = statistics.median(values)
        extra = "" if med == base else f"  ratio {med / base:4.2f}  {'ok' if med * 1000 < GOAL_MS else 'ABOVE GOAL'}"
        print(f"  {name:32} {med * 1000:6.1f} ms  (min {min(values) * 1000:5.1f}){extra}")


if __name__ == "__main__":
    main()
