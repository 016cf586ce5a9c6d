"""`statusctl demo`: leaves nothing behind, however it ends (issue 13, point 15)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ROOT


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("statusctl-demo-"))


def test_demo_runs_and_removes_its_folder(tmp_path: Path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    r = subprocess.run([sys.executable, "-m", "statusctl", "demo"], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Removed the temporary database" in r.stdout
    assert leftovers(tmp_path) == []


def read_terminal(fd: int, until: bytes | None, limit: float = 60.0) -> bytes:
    """What the demo wrote on its terminal, up to `until` (None: until the terminal closes).

    `limit` is a hang guard, not a measurement."""
    seen = b""
    deadline = time.monotonic() + limit
    while until is None or until not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {until or 'the end'!r} on the terminal:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # every process holding the terminal has ended
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["TERM", "HUP", "INT"])
def test_demo_stopped_at_its_prompt_cleans_up(tmp_path: Path, sig: signal.Signals):
    main, child = pty.openpty()  # a terminal, so the demo waits at "Press Enter"
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT), "COLUMNS": "120", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "statusctl", "demo", "--oss"], stdin=child, stdout=child,
                            stderr=child, env=env, close_fds=True)
    os.close(child)
    try:
        shown = read_terminal(main, b"Press Enter to stop the demo servers")
        assert len(leftovers(tmp_path)) == 1, "the demo's folder exists while it waits"
        proc.send_signal(sig)
        rest = read_terminal(main, None)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert code == 128 + sig, (code, rest)
    assert leftovers(tmp_path) == [], "the temporary database was left behind"
    text = (shown + rest).decode(errors="replace")
    assert "Aborted" not in text and "Traceback" not in text, text
