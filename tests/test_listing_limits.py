"""`--limit N` of `stack list`, `orders list` and `stack history`: a cut listing says so; 0 shows all.

The default cap is 1,000 rows. A text listing that was cut ends with "Showing the
first 1,000 of 1,003; use --limit 0 for all." (the latest, for the history);
--json stays a plain list of the same rows. The totals come from the stack's
counters or COUNT(*) through an index, checked here against counting the rows.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from statusctl.core import listing
from statusctl.storage import totals
from statusctl.storage.db import Database

from .stackhelpers import STORE, cli, fill, query, setup_db

N = 1003


@pytest.fixture
def big(db_file: Path) -> dict[str, list[str]]:
    """1,003 orders of store `hook`, one record each, and 1,003 attempts in the history."""
    setup_db(db_file, {STORE: "https://hook.example/in", "other": "https://other.example/in"})
    queued = fill(db_file, records=N, orders=N)
    now = time.time()
    query(db_file, "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < ?) "
          "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome, status) "
          "SELECT ? + k, 'su_' || k, 'hook', 'hook', printf('O%05d', k), 1, 'retry', 500 FROM n", (N - 1, now - N))
    return queued


def body_lines(out: str, marker: str) -> int:
    return sum(1 for line in out.splitlines() if marker in line)


@pytest.mark.usefixtures("big")
def test_stack_list_says_when_it_was_cut_and_limit_0_shows_all(db_file: Path):
    out = cli("stack", "list").stdout
    assert "Showing the first 1,000 of 1,003; use --limit 0 for all." in out
    assert body_lines(out, "su_") == 1000
    every = cli("stack", "list", "--limit", "0").stdout
    assert body_lines(every, "su_") == N and "Showing" not in every
    assert "Showing the first 10 of 1,003" in cli("stack", "list", "--limit", "10").stdout
    assert "Showing" not in cli("stack", "list", "--limit", str(N)).stdout
    # --json: a plain list, cut at the same N.
    assert len(cli("stack", "list", "--json").json()) == 1000
    assert len(cli("stack", "list", "--json", "--limit", "0").json()) == N
    assert [r["order"] for r in cli("stack", "list", "--json", "--limit", "3").json()] == ["O00000", "O00001", "O00002"]


@pytest.mark.usefixtures("big")
def test_orders_list_says_when_it_was_cut(db_file: Path):
    out = cli("orders", "list", "--store", STORE).stdout
    assert "Showing the first 1,000 of 1,003; use --limit 0 for all." in out
    assert body_lines(out, "O0") == 1000
    assert body_lines(cli("orders", "list", "--limit", "0").stdout, "O0") == N
    assert len(cli("orders", "list", "--json").json()) == 1000
    assert len(cli("orders", "list", "--json", "--limit", "0").json()) == N


@pytest.mark.usefixtures("big")
def test_stack_history_shows_the_latest_and_says_so(db_file: Path):
    out = cli("stack", "history").stdout
    assert "Showing the latest 1,000 of 1,003; use --limit 0 for all." in out
    rows = cli("stack", "history", "--json", "--limit", "2").json()
    assert [r["uid"] for r in rows] == [f"su_{N - 2}", f"su_{N - 1}"]  # the latest, oldest first
    assert len(cli("stack", "history", "--json", "--limit", "0").json()) == N
    assert "Showing" not in cli("stack", "history", "--limit", "0").stdout


def test_a_negative_limit_is_a_usage_error():
    for args in (["stack", "list"], ["orders", "list"], ["stack", "history"]):
        ran = cli(*args, "--limit", "-1")
        assert ran.code == 2 and "--limit" in ran.stderr


def test_help_documents_the_default_cap():
    for args in (["stack", "list"], ["orders", "list"], ["stack", "history"]):
        text = " ".join(cli(*args, "--help").stdout.split())
        assert "--limit N" in text and "default 1000; 0: all" in text and "--json prints the same N" in text


@pytest.mark.parametrize(
    ("filters", "where", "params"),
    [
        ({}, "1 = 1", ()),
        ({"store": STORE}, "destination = ?", (STORE,)),
        ({"store": "other"}, "destination = ?", ("other",)),
        ({"failed": True}, "state = 'failed'", ()),
        ({"failed": True, "store": STORE}, "state = 'failed' AND destination = ?", (STORE,)),
        ({"order": "O00007"}, "order_number = ?", ("O00007",)),
        ({"order": "O00007", "failed": True}, "order_number = ? AND state = 'failed'", ("O00007",)),
    ],
)
def test_the_stack_total_matches_counting_the_rows(big: dict[str, list[str]], db_file: Path,
                                                   filters: dict[str, object], where: str,
                                                   params: tuple[object, ...]):
    query(db_file, "UPDATE stack SET state = 'failed' WHERE order_number IN ('O00007', 'O00008')")
    db = Database.open(db_file)
    try:
        expected = db.one(f"SELECT COUNT(*) FROM stack WHERE {where}", params)[0]  # type: ignore[index]
        assert totals.stack_total(db, **filters) == expected  # type: ignore[arg-type]
        rows, total = listing.stack_page(db, limit=1, **filters)  # type: ignore[arg-type]
        assert total == (expected if expected > 1 else None)
    finally:
        db.close()


def test_limit_0_lists_everything_on_either_backend(target):
    """0 (all) reaches the database as no LIMIT at all: PostgreSQL refuses SQLite's LIMIT -1."""
    setup_db(target, {STORE: "https://hook.example/in"})
    fill(target, records=3, orders=3)
    assert len(cli("stack", "list", "--json", "--limit", "0").json()) == 3
    assert len(cli("stack", "list", "--json", "--limit", "2").json()) == 2
    assert cli("stack", "history", "--json", "--limit", "0").json() == []
    assert len(cli("orders", "list", "--json", "--limit", "0").json()) == 3
