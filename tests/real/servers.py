"""The processes behind the real carts: one MariaDB server and PHP's built-in web server.

Both run on 127.0.0.1 with OS-assigned ports, out of scratch folders, and are
stopped by the session's fixtures (tests/real/conftest.py). `sql` talks to
MariaDB with its own command-line client over the server's socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

PHP_DIR = Path(__file__).with_name("php")
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
PHP_MODULES = ("mysqli", "gd", "curl", "zip", "mbstring", "xml")  # OpenCart's and WooCommerce's needs
GUARD_S = 30.0  # a hang guard for start-ups, not a measurement


def tool(name: str) -> str | None:
    return shutil.which(name, path=SBIN)


def require_tools(*names: str) -> None:
    """Skip (with the reason) unless these programs and PHP's modules are installed."""
    missing = [n for n in names if tool(n) is None]
    if missing:
        pytest.skip(f"real carts need {', '.join(missing)} (Debian: php-cli mariadb-server mariadb-client; "
                    ".ci/run installs them)")
    if "php" in names:
        have = subprocess.run([tool("php") or "php", "-m"], capture_output=True, text=True).stdout.lower().split()
        absent = [m for m in PHP_MODULES if m not in have]
        if absent:
            pytest.skip(f"real carts need the PHP modules {', '.join(absent)} (Debian: php-{' php-'.join(absent)})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {GUARD_S:g} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server started in its own process group, with its workers (php -S forks them)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class MariaDB:
    """One mariadbd on a scratch data folder: TCP on 127.0.0.1 for the carts, a socket for the tests."""

    USER, PASSWORD = "carts", "carts-password-1"
    # Scratch data: no fsync (a crash of the machine may lose it, which a test server can afford).
    SCRATCH = ("--innodb-flush-method=nosync", "--skip-innodb-doublewrite", "--innodb-flush-log-at-trx-commit=0",
               "--innodb-log-file-size=16M")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket = folder / "mysqld.sock"
        self.log = folder / "mariadbd.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        cmd = [tool("mariadb-install-db") or "mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
               "--auth-root-authentication-method=normal", "--skip-test-db", *self.SCRATCH]
        cmd += ["--user=root"] if os.geteuid() == 0 else []
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        self.start()
        self.sql(f"CREATE USER '{self.USER}'@'127.0.0.1' IDENTIFIED BY '{self.PASSWORD}'; "
                 f"GRANT ALL ON *.* TO '{self.USER}'@'127.0.0.1'")

    def start(self) -> None:
        cmd = [tool("mariadbd") or "mariadbd", "--no-defaults", f"--datadir={self.data}",
               "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.socket}",
               f"--pid-file={self.folder / 'mariadbd.pid'}", "--skip-name-resolve", "--skip-log-bin",
               "--innodb-buffer-pool-size=64M", "--sql-mode=NO_ENGINE_SUBSTITUTION", *self.SCRATCH]
        cmd += ["--user=root"] if os.geteuid() == 0 else []
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_listening(self.port, self.proc, "mariadbd", self.log)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def sql(self, statements: str, database: str = "") -> list[list[str]]:
        """Run SQL as root over the socket; the rows of the last result, as text."""
        cmd = [tool("mariadb") or "mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot",
               "--batch", "--skip-column-names", "--raw", "-e", statements]
        done = subprocess.run([*cmd, database] if database else cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"SQL failed: {done.stderr.strip()}\n{statements[:500]}")
        return [line.split("\t") for line in done.stdout.splitlines()]


class PhpServer:
    """`php -S` serving a folder on a free port, with the test hook (prepend.php) and captured mail."""

    def __init__(self, docroot: Path, folder: Path, *, router: Path | None = None, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.docroot = docroot
        self.ctl = folder / "ctl"  # the hook's folder: calls.log, hold, held, release, done
        self.mail = folder / "mail"
        self.log = folder / "php-server.log"
        self.router = router
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl.mkdir(parents=True, exist_ok=True)
        self.mail.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ini(self) -> list[str]:
        """php.ini settings of a production-like server, plus the test hook and mail capture."""
        settings = {"display_errors": "0", "log_errors": "1", "error_log": str(self.log.with_suffix(".errors")),
                    "opcache.enable_cli": "1", "memory_limit": "256M",
                    "auto_prepend_file": str(PHP_DIR / "prepend.php"),
                    "sendmail_path": f"{PHP_DIR / 'sendmail.sh'} {self.mail}"}
        return [arg for key, value in settings.items() for arg in ("-d", f"{key}={value}")]

    def start(self) -> None:
        cmd = [tool("php") or "php", *self.ini(), "-S", f"127.0.0.1:{self.port}", "-t", str(self.docroot)]
        cmd += [str(self.router)] if self.router else []
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "3", "RC_CTL": str(self.ctl), **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.docroot, start_new_session=True)
        wait_listening(self.port, self.proc, "php -S", self.log)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def run(self, script: Path, *args: str) -> str:
        """Run a PHP script with this server's settings (as the site's own code would run); its stdout."""
        env = {**os.environ, "RC_PORT": str(self.port), **self.env}
        done = subprocess.run([tool("php") or "php", *self.ini(), "-d", "auto_prepend_file=", str(script), *args],
                              capture_output=True, text=True, env=env, cwd=self.docroot)
        if done.returncode != 0:
            raise RuntimeError(f"php {script.name} {' '.join(args)} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        return done.stdout

    # -- what tests read and do --------------------------------------------------

    def calls(self) -> list[str]:
        log = self.ctl / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def mails(self) -> list[str]:
        """Every message the site handed to sendmail, oldest first, as text."""
        files = sorted(self.mail.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [p.read_text(errors="replace") for p in files]

    def hold(self, fragment: str) -> None:
        """Hold the next request whose 'METHOD URI' contains fragment (see prepend.php)."""
        for name in ("held", "release", "done"):
            (self.ctl / name).unlink(missing_ok=True)
        (self.ctl / "hold").write_text(fragment)

    def wait_for(self, name: str) -> bool:
        deadline = time.monotonic() + GUARD_S
        while not (self.ctl / name).exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def release(self, mode: str) -> None:
        (self.ctl / "release").write_text(mode)
