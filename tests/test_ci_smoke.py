"""examples/ci-smoke.sh as a CI job runs it: through $STATUSCTL, with a PATH that lacks statusctl."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, cli

SCRIPT = ROOT / "examples" / "ci-smoke.sh"
BIN = Path(sys.executable).with_name("statusctl")


def smoke(db: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "STATUSCTL": str(BIN), "STATUSCTL_DB": str(db), "HOME": str(db.parent)}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not BIN.exists() or shutil.which("bash") is None, reason="needs bash and the installed statusctl")
def test_the_smoke_script_passes_on_a_clean_stack_and_fails_loudly_on_a_failed_record(db_file: Path):
    cli("init")
    ok = smoke(db_file)
    assert (ok.returncode, ok.stdout.splitlines()[-1]) == (0, "statusctl smoke check passed."), ok.stderr
    cli("config", "set", "UseStatusUpdates", "true")
    cli("stores", "add", "gone", "--cart", "webhook", "--url", "http://127.0.0.1:9/hook",
        "--secret", "secret=whsec_" + "A" * 32)
    cli("orders", "import", str(ROOT / "examples" / "orders.csv"), "--store", "gone")
    cli("fire", "order-approved", "1001")
    db = sqlite3.connect(db_file)
    db.execute("UPDATE stack SET state = 'failed', last_error = 'HTTP 410: the endpoint is gone'")
    db.commit()
    db.close()
    bad = smoke(db_file)
    assert bad.returncode == 3
    assert "smoke check FAILED" in bad.stderr and "1001" in bad.stderr


def test_without_statusctl_on_path_the_script_says_so(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "STATUSCTL_DB": str(tmp_path / "x.db")}
    ran = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 127 and "could not read the stack" in ran.stderr
    assert not os.path.exists(tmp_path / "x.db")

