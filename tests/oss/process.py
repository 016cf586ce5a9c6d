"""A real `statusctl oss serve` process on 127.0.0.1 (a port the OS picks), and signed updates sent to it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusctl.carts.signing import headers as signed_headers
from statusctl.oss.server import ENV_SECRET

from .conftest import SECRET, payload

_LISTENING = re.compile(r"running on http://127\.0\.0\.1:(\d+)")
_CAP = re.compile(r"At most (\d+) connections at once \((\d+) per client\); a request must arrive within ([\d.]+) s")


def _loopback_range() -> bool:
    """Whether this machine routes all of 127.0.0.0/8 to itself (Linux does): tests play other clients there."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.1.1", 0))
        except OSError:
            return False
    return True


needs_loopback_range = pytest.mark.skipif(
    not _loopback_range(), reason="other client addresses need 127.0.0.0/8 on the loopback interface"
)


class OssProcess:
    """`statusctl oss serve --port 0 ARGS` with the test secret; `nofile` lowers its file limit.

    Its database is `db` (a PostgreSQL URL shared by several processes), else oss.db in `tmp_path`.
    """

    def __init__(self, tmp_path: Path, *args: str, nofile: int | None = None, db: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.args = args
        self.nofile = nofile
        self.db = db or str(tmp_path / "oss.db")
        self.lines: list[str] = []
        self.url = ""
        self.cap = self.per_client = 0
        self.request_timeout = 0.0

    def __enter__(self) -> OssProcess:
        self.start()
        self.wait_started()
        return self

    def start(self) -> None:
        """Start the process (`wait_started` waits until it listens): several can start at once."""
        env = {**os.environ, ENV_SECRET: SECRET, "STATUSCTL_DB": str(self.tmp_path / "main.db"),
               "PYTHONUNBUFFERED": "1"}
        limit = self.nofile

        def lower_file_limit() -> None:
            if limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "statusctl", "oss", "serve", "--port", "0",
             "--db", self.db, *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=self.tmp_path,
            preexec_fn=lower_file_limit,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def wait_started(self) -> None:
        deadline = time.monotonic() + 30
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise AssertionError("the OSS did not start:\n" + "".join(self.lines))
            time.sleep(0.05)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if found := _CAP.search(line):
                self.cap, self.per_client = int(found[1]), int(found[2])
                self.request_timeout = float(found[3])
            if found := _LISTENING.search(line):
                self.url = f"http://127.0.0.1:{found[1]}"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.reader.join(10)

    def sockets(self) -> set[str]:
        """The sockets the server process holds now ('socket:[inode]', its listening socket included)."""
        held = set()
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else []:
            with contextlib.suppress(OSError):  # closed meanwhile
                target = os.readlink(fd)
                if target.startswith("socket:"):
                    held.add(target)
        return held

    def post_update(self, number: str = "1001", postal: str = "90210", **fields: Any) -> httpx.Response:
        """A signed update for one order, as the stack controller sends it."""
        msg_id = f"rec_{number}_{time.monotonic_ns()}"
        body = json.dumps({"id": msg_id, "timestamp": int(time.time()),
                           **payload(number, postal=postal, **fields)}).encode()
        hdrs = {**signed_headers(SECRET, msg_id, body), "content-type": "application/json"}
        return httpx.post(f"{self.url}/api/updates", content=body, headers=hdrs, timeout=10)
