"""Values at the edges: calendar-edge times (never a 500: refused with 422 at the update, or shown in
every time zone), the same work for a wrong postal code as for an unknown order, the page titles."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from statusctl.oss.links import derive_link_key, make_link
from statusctl.storage import pgsql
from statusctl.storage.backends import Target
from statusctl.storage.oss import CANDIDATES, open_oss_database

from .conftest import SECRET, Sender, payload

ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Etc/GMT-14", "Etc/GMT+12", "America/New_York",
         "Asia/Kolkata", "Europe/London", "Australia/Lord_Howe"]
EDGES = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "0001-01-01T23:00:00-05:00", "0001-01-01T12:00:00-14:00",
    "0001-01-02T00:00:00Z", "0001-01-02T00:00:00+14:00", "9999-12-30T23:59:59Z", "9999-12-30T23:59:59-05:00",
    "9999-12-31T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59+14:00", "9999-12-31T10:00:00-12:00", "9999-12-30T10:00:00-12:00",
]


def _pages(client: TestClient, number: str, postal: str = "90210") -> list[Any]:
    link = make_link(number, postal, derive_link_key(SECRET), store="shop")
    answers = [client.get(f"{link}?tz={zone}") for zone in ZONES]
    return answers + [client.get(link), client.get(f"/api/orders/{number}", params={"postal": postal})]


def _edge_update(field: str, value: str, number: str) -> dict[str, Any]:
    body = payload(number)
    if field == "changed_at":
        body["changed_at"] = value
    elif field == "order.date":
        body["order"]["date"] = value
    else:
        body["packages"] = [{"tracking": "1Z999AA10123456784", "carrier": "UPS", "shipped_at": value,
                             "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 1}]}]
    return body


@pytest.mark.parametrize("field", ["changed_at", "packages[0].shipped_at", "order.date"])
def test_a_calendar_edge_time_is_refused_at_the_update_or_shown_in_every_zone(
    sender: Sender, client: TestClient, field: str
) -> None:
    outcome = {}
    for i, value in enumerate(EDGES):
        answer = sender.post(_edge_update(field, value, f"E{i}"))  # a 500 raises here
        assert answer.status_code in (200, 422), (value, answer.status_code)
        outcome[value] = answer.status_code
        if answer.status_code == 422:
            assert answer.json()["error"].startswith(f"{field} ({value!r}) is too near the end of the calendar")
            continue
        for page in _pages(client, f"E{i}"):
            assert page.status_code == 200, (value, page.url)
    # Those a zone cannot show are refused; those every zone can show are kept.
    for value in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T00:00:00Z",
                  "9999-12-31T23:59:59+14:00", "9999-12-30T23:59:59-05:00", "9999-12-31T10:00:00-12:00"):
        assert outcome[value] == 422, value
    for value in ("0001-01-02T00:00:00Z", "0001-01-01T23:00:00-05:00", "9999-12-30T23:59:59Z",
                  "9999-12-30T10:00:00-12:00"):
        assert outcome[value] == 200, value


def test_an_order_date_without_a_time_or_in_free_text_is_kept(sender: Sender, client: TestClient) -> None:
    for number, value in (("D1", "0001-01-01"), ("D2", "9999-12-31"), ("D3", "last Tuesday")):
        assert sender.post(_edge_update("order.date", value, number)).status_code == 200
        assert all(page.status_code == 200 for page in _pages(client, number))


def test_edge_times_stored_by_an_older_oss_still_show(sender: Sender, client: TestClient, oss_db: Target) -> None:
    assert sender.post(payload("1001", packages=[{
        "tracking": "1Z999AA10123456784", "carrier": "UPS", "shipped_at": "2024-05-01T11:00:00Z",
        "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 1}]}])).status_code == 200
    db = open_oss_database(oss_db, migrate=False)
    with db.tx() as conn:  # what an OSS that did not check these accepted
        conn.execute("UPDATE orders SET changed_at = 253402300799.999999, order_date = '9999-12-31T23:59:59Z'")
        conn.execute("UPDATE history SET changed_at = -62135596800.0")
        conn.execute("UPDATE packages SET shipped_at = '0001-01-01T00:00:00+05:00'")
    db.close()
    for page in _pages(client, "1001"):
        assert page.status_code == 200, page.url


# psycopg builds each row it fetches in Python (statusctl.storage.pgsql makes them): a known order's
# one row is a few calls more than an unknown order's none, as sqlite3's C code is for SQLite, where
# the profile cannot see it. The OSS's own work (and its comparisons) must be the same.
_DRIVER = (str(Path(pgsql.__file__)), str(Path(importlib.util.find_spec("psycopg").origin or "x").parent))  # type: ignore[union-attr]


def _work(call: Callable[[], Any]) -> list[tuple[str, ...]]:
    """Every Python and C function `call` runs outside the database driver, in order, with the lengths of
    compare_digest's arguments."""
    calls: list[tuple[str, ...]] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if frame.f_code.co_filename.startswith(_DRIVER):
            return
        if event == "call":
            calls.append((frame.f_code.co_filename, frame.f_code.co_name))
        elif event == "c_call":
            calls.append(("C", getattr(arg, "__qualname__", str(arg))))

    import hmac

    real = hmac.compare_digest

    def compare(a: Any, b: Any) -> bool:
        calls.append(("compare_digest", str(len(a)), str(len(b))))
        return real(a, b)

    hmac.compare_digest = compare  # type: ignore[assignment]
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
        hmac.compare_digest = real
    return calls


def _reader(store: Any) -> sqlite3.Connection:
    """The SQLite connection a lookup on this thread reads with (the one idle reading connection)."""
    with store._readers.lend(store.name) as db:
        return db.conn  # type: ignore[no-any-return]


def _statements(client: TestClient, number: str, postal: str) -> list[str]:
    """The SQL a lookup runs (the number it looks for written as ?)."""
    store = client.app.state.store  # type: ignore[attr-defined]
    done: list[str] = []
    _reader(store).set_trace_callback(done.append)
    try:
        store.find(number, postal)
    finally:
        _reader(store).set_trace_callback(None)
    return [sql.replace(f"'{number}'", "?") for sql in done]


@pytest.mark.parametrize(
    ("stored", "postal"), [("90210", "11111"), ("90210", "SW1A 1AA"), ("90210-1234", "90211"), ("SW1A 1AA", "")]
)
def test_a_wrong_postal_code_does_the_same_work_as_an_unknown_order(
    sender: Sender, client: TestClient, oss_db: Target, stored: str, postal: str
) -> None:
    assert sender.post(payload("1001", postal=stored)).status_code == 200
    store = client.app.state.store  # type: ignore[attr-defined]
    assert store.find("1001", postal) is None and store.find("7777", postal) is None
    store.find("1001", postal)  # the reader connection and its statements exist before counting

    wrong = _work(lambda: store.find("1001", postal))
    unknown = _work(lambda: store.find("7777", postal))
    assert wrong == unknown
    assert ("compare_digest", "32", "32") in wrong  # the postal code is compared in both
    if isinstance(oss_db, Path):
        assert _statements(client, "1001", postal) == _statements(client, "7777", postal) != []
        plan = " ".join(str(row[3]) for row in _reader(store).execute("EXPLAIN QUERY PLAN " + CANDIDATES, ("1001",)))
        assert "COVERING INDEX" in plan and "TEMP B-TREE" not in plan, plan  # no table read, no sort, in either case
    else:
        plan = _pg_plan(oss_db)
        assert "Scan Backward using orders_lookup" in plan and "Sort" not in plan, plan  # the index, no sort


def _pg_plan(url: str) -> str:
    """PostgreSQL's plan for the lookup, table scans ruled out (this test's table is too small to need the index)."""
    db = open_oss_database(url, migrate=False)
    try:
        with db.tx() as conn:
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            return " ".join(str(r[0]) for r in conn.execute("EXPLAIN " + CANDIDATES, ("1001",)))
    finally:
        db.close()


def test_a_forged_link_for_a_known_order_does_the_same_work_as_for_an_unknown_one(
    sender: Sender, client: TestClient
) -> None:
    from statusctl.oss.links import parse_token

    assert sender.post(payload("1001")).status_code == 200
    store = client.app.state.store  # type: ignore[attr-defined]
    keys = [derive_link_key(SECRET)]
    forged = {n: parse_token(make_link(n, "00000", keys[0], store="shop").rsplit("/", 1)[1]) for n in ("1001", "7777")}
    assert store.by_token(forged["1001"], keys) is None
    assert _work(lambda: store.by_token(forged["1001"], keys)) == _work(lambda: store.by_token(forged["7777"], keys))


def test_page_titles_name_the_page_once(sender: Sender, client: TestClient) -> None:
    assert "<title>Order status</title>" in client.get("/").text
    sender.post(payload("1001"))
    page = _pages(client, "1001")[-2]
    assert "<title>Order 1001 · Order status</title>" in page.text
