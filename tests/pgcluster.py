"""A throwaway PostgreSQL cluster for the tests: started once per session, thrown away at its end.

The cluster lives in a fresh folder under /tmp (short, so the socket path stays under the
108 bytes a Unix socket name allows); as root, every server command runs as the `postgres`
user (`runuser`), since PostgreSQL refuses to run as root. It listens on 127.0.0.1 at a port
the kernel chose free, and on a socket in that folder. Durability is switched off
(`fsync=off` and friends): a test cluster is thrown away, and those settings make it fast.

Roles: `statusctl`, the superuser the tests connect as (trusted over TCP and the socket),
and `statusctl_pw`, a plain role that must give its password over TCP (SCRAM) for the
authentication tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "statusctl"
PASSWORD_ROLE = "statusctl_pw"
_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


class Unavailable(Exception):
    """PostgreSQL cannot be had here (no binaries, or a cluster that will not start); the reason says why."""


def find_bindir() -> Path:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise Unavailable("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
                          "install Debian's `postgresql` package to run the PostgreSQL tests")
    return Path(found[-1]).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One running cluster: its folder, port, socket folder and the password of PASSWORD_ROLE."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 0
        # Characters that need URL quoting, so a test sees the masking of a quoted password too.
        self.password = "pw@" + secrets.token_hex(8) + "/x"
        self._as_postgres = os.geteuid() == 0

    # -- commands ---------------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        done = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        if done.returncode != 0:
            raise Unavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8")
        for _ in range(5):  # another process may take the free port between our look and the server's bind
            self.port = free_port()
            options = " ".join(f"-c {s}" for s in (*_SETTINGS, f"port={self.port}", "listen_addresses=127.0.0.1",
                                                    f"unix_socket_directories={self.socket_dir}"))
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
                             "-o", options, "start")
            if done.returncode == 0:
                break
        else:
            raise Unavailable(f"the test cluster did not start: {self.log_tail()}")
        self.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{self.password}'")

    def restart(self) -> None:
        """Stop and start the server (same port and settings): every connection to it is cut."""
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
                         "-m", "fast", "restart")
        if done.returncode != 0:
            raise Unavailable(f"the test cluster did not restart: {self.log_tail()}")

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 800) -> str:
        try:
            return (self.root / "log").read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # -- databases --------------------------------------------------------------

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]  # test-built statements, not user input

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database with a unique name."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """The TCP URL of `dbname` (with a password, quoted as a URL needs)."""
        auth = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def socket_url(self, dbname: str, user: str = SUPERUSER) -> str:
        """`dbname` through the Unix socket, given as libpq's `?host=/socket/dir` parameter."""
        return f"postgresql://{user}@/{dbname}?host={quote(str(self.socket_dir), safe='')}&port={self.port}"


def start_cluster() -> Cluster:
    """A started cluster, or Unavailable with the reason (binaries or psycopg missing, start failed)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed: pip install 'statusctl[postgres]' to run the "
                          "PostgreSQL tests") from None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise Unavailable("running as root without runuser, so the PostgreSQL server cannot be started")
    cluster = Cluster(find_bindir())
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
