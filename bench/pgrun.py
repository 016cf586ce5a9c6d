"""The PostgreSQL side of the benches: the `--backends` flag, a throwaway cluster, fresh databases and copies.

A bench that compares the backends runs the same work on each in the same run;
this module gives it the PostgreSQL half. The cluster is tests/pgcluster.py's
(imported from the repository root): a fresh one in /tmp, reached over TCP on
127.0.0.1 as a controller on another machine would reach a shared server (the
socket would be quicker and say less), thrown away at the end.

Durability is not the same on the two sides, and the benches say so in their
output: the test cluster runs with fsync=off, synchronous_commit=off and
full_page_writes=off (a commit reaches the OS, never the disk), while statusctl's
SQLite runs as shipped (`apply` with synchronous=FULL, one fsync per commit; a
controller with synchronous=NORMAL in WAL, fsyncs at checkpoints only).
`--pg-durable` starts the cluster with fsync=on and synchronous_commit=on
instead, for the figure a shop's real server would give.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import pgcluster  # noqa: E402

SQLITE, POSTGRESQL = "sqlite", "postgresql"
RELAXED = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
DURABLE = ("fsync=on", "synchronous_commit=on", "full_page_writes=on")


def unavailable() -> str | None:
    """Why PostgreSQL cannot be had here (no psycopg, no binaries), or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'statusctl[postgres]')"
    try:
        pgcluster.find_bindir()
    except pgcluster.Unavailable as exc:
        return str(exc)
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--backends` (both where PostgreSQL can be had, else sqlite) and `--pg-durable`."""
    default = SQLITE if unavailable() else f"{SQLITE},{POSTGRESQL}"
    parser.add_argument("--backends", default=default,
                        help=f"comma-separated: sqlite, postgresql (default here: {default})")
    parser.add_argument("--pg-durable", action="store_true",
                        help="run the PostgreSQL cluster with fsync=on, synchronous_commit=on (default: off, as in tests)")


def backends(args: argparse.Namespace) -> list[str]:
    """The backends asked for, in order; PostgreSQL asked for where it cannot be had is an error."""
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in wanted:
        if b not in (SQLITE, POSTGRESQL):
            raise SystemExit(f"--backends: unknown backend {b!r} (sqlite, postgresql)")
    if POSTGRESQL in wanted and (reason := unavailable()):
        raise SystemExit(f"--backends postgresql: {reason}")
    return wanted


class PgBench:
    """A started cluster: fresh databases (`new`) and copies of one (`copy`, CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, cluster: pgcluster.Cluster, durable: bool) -> None:
        self.cluster = cluster
        self.durable = durable

    def new(self, prefix: str) -> str:
        """The URL of a new empty database."""
        return self.cluster.url(self.cluster.create_database(prefix))

    def copy(self, url: str, prefix: str) -> str:
        """The URL of a new database copied from the one at `url` (nobody may be connected to that one)."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.cluster.sql(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
        return self.cluster.url(name)

    def drop(self, url: str) -> None:
        """Throw a database away (the benches' big ones would fill the disk otherwise)."""
        self.cluster.sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def connect(self, url: str) -> Any:
        """A plain psycopg connection (autocommit off) for a floor or a bulk load."""
        import psycopg

        return psycopg.connect(url)

    def durability(self) -> str:
        """One line for the output: what a commit waits for on each side."""
        pg = ", ".join(DURABLE if self.durable else RELAXED)
        with self.connect(self.cluster.url("postgres")) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
        return (f"durability: PostgreSQL {server} throwaway cluster over TCP 127.0.0.1 with {pg}; "
                "SQLite as shipped (apply synchronous=FULL, a controller synchronous=NORMAL in WAL)")


@contextlib.contextmanager
def started(wanted: list[str], *, durable: bool = False) -> Iterator[PgBench | None]:
    """A PgBench when PostgreSQL is among `wanted` (started, and stopped at the end), else None."""
    if POSTGRESQL not in wanted:
        yield None
        return
    # The cluster's settings are tests/pgcluster.py's, its durability ones swapped for --pg-durable.
    saved = pgcluster._SETTINGS
    if durable:
        pgcluster._SETTINGS = tuple(s for s in saved if s.split("=")[0] not in {d.split("=")[0] for d in DURABLE}) + DURABLE
    try:
        cluster = pgcluster.start_cluster()
    finally:
        pgcluster._SETTINGS = saved
    try:
        yield PgBench(cluster, durable)
    finally:
        cluster.stop()
