"""Fixtures of the `statusctl db copy` tests: a fresh PostgreSQL database per test, a receiver, the shop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..carts.fakeserver import FakeServer
from ..pgcluster import Cluster
from ..stackhelpers import Hook, serve
from .helpers import build_shop


@pytest.fixture
def empty_pg(pg_server: Cluster) -> str:
    """A new empty PostgreSQL database for this test: its URL (the superuser, no password)."""
    return pg_server.url(pg_server.create_database("copy"))


@pytest.fixture
def hooked() -> Iterator[tuple[Hook, FakeServer]]:
    with serve() as served:
        yield served


@pytest.fixture
def shop(db_file: Path, hooked: tuple[Hook, FakeServer]) -> dict[str, list[str]]:
    hook, server = hooked
    return build_shop(db_file, hook, server)
