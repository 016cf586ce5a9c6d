"""Carriers, links, rate limiter and the store's write combining, without HTTP."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusctl.domain.carriers import carrier_name, tracking_url
from statusctl.oss.links import (
    derive_link_key,
    make_token,
    number_key,
    parse_token,
    postal_key,
    postal_matches,
)
from statusctl.oss.ratelimit import RateLimiter, client_key
from statusctl.oss.store import OssStore
from statusctl.oss.validate import Invalid, parse_time
from statusctl.storage.backends import Target

from .conftest import SECRET, Clock, payload


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [("UPS", "UPS"), ("united parcel service", "UPS"), ("U.S.P.S.", "USPS"), ("Federal Express", "FedEx"),
     ("dhl-express", "DHL"), ("Postes Canada", "Canada Post"), ("ROYAL MAIL", "Royal Mail"), ("Acme", "Acme"),
     (None, None)],
)
def test_carrier_names(carrier: str | None, expected: str | None) -> None:
    assert carrier_name(carrier) == expected


def test_tracking_urls() -> None:
    assert tracking_url("UPS", "1Z 999 AA1 0123456784") == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    assert tracking_url("ups", "a/b?c&d") == "https://www.ups.com/track?tracknum=a%2Fb%3Fc%26d"
    assert tracking_url("Acme Freight", "123") is None
    assert tracking_url("UPS", None) is None
    assert tracking_url("UPS", "  ") is None


def test_link_key_depends_on_the_secret_and_tokens_round_trip() -> None:
    key = derive_link_key(SECRET)
    assert len(key) == 32 and key != derive_link_key("whsec_" + "QUJD" * 8)
    token = parse_token(make_token("#1001", "90210", key, store="shop"))
    assert token is not None and (token.store, token.number) == ("shop", "1001")
    assert token.matches("90210", [b"other", key])
    assert not token.matches("90211", [key])
    assert SECRET[6:] not in make_token("1001", "90210", key)


def test_number_and_postal_keys() -> None:
    assert number_key(" #a-1 ") == "A-1"
    assert postal_key("sw1a 1aa") == postal_key("SW1A-1AA") == "SW1A1AA"
    assert postal_matches("902101234", "90210") and postal_matches("902101234", "90210-1234")
    assert not postal_matches("90210", "902101234")
    assert not postal_matches("", "")


def test_rate_limiter_refills_over_time() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(3, 30.0, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(10.0)
    assert limiter.take("b") == 0.0
    clock.now = 10.0
    assert limiter.take("a") == 0.0
    clock.now = 1000.0
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # never more than the capacity


def test_rate_limiter_forgets_the_least_recent_clients() -> None:
    limiter = RateLimiter(1, 60.0, clock=Clock(0.0), max_clients=2)
    for key in ("a", "b", "c"):
        limiter.take(key)
    assert limiter.take("a") == 0.0  # forgotten, so a fresh bucket
    assert limiter.take("c") > 0


@pytest.mark.parametrize(
    ("host", "key"),
    [("192.0.2.7", "192.0.2.7"), ("2001:db8::1", "2001:db8::/64"), ("2001:db8::ffff:1", "2001:db8::/64"),
     ("::ffff:192.0.2.7", "192.0.2.7"), (None, "unknown"), ("testclient", "unknown"), ("x-1", "unknown")],
)
def test_client_keys(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_parse_time() -> None:
    assert parse_time("2024-05-01T12:00:00Z", "t") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_time("2024-05-01T14:00:00+02:00", "t") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    with pytest.raises(Invalid):
        parse_time("2024-05-01 12:00", "t")


def test_concurrent_updates_are_combined_and_all_kept(oss_db: Target) -> None:
    store = OssStore(oss_db)
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        for n in range(25):
            number = f"{worker}-{n}"
            when = datetime(2024, 5, 1, 12, n, tzinfo=timezone.utc)
            body = payload(number, changed_at=when.isoformat())
            result = store.apply(body, when, f"rec-{number}", 0.0)  # type: ignore[arg-type]
            again = store.apply(body, when, f"rec-{number}", 0.0)  # type: ignore[arg-type]
            with lock:
                outcomes.extend([result, again])

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("applied") == 200 and outcomes.count("duplicate") == 200
    assert store.find("3-7", "90210") is not None
    store.close()
    reopened = OssStore(oss_db)  # migrations are recorded: opening again is a no-op
    assert reopened.load("shop", "7-24") is not None
    reopened.close()


def test_database_file_is_private(tmp_path: Path) -> None:
    OssStore(tmp_path / "oss.db").close()
    assert (tmp_path / "oss.db").stat().st_mode & 0o777 == 0o600


_EXAMPLES = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(6)), repeats=st.lists(st.integers(0, 5), max_size=4))
def test_any_arrival_order_ends_with_the_newest_update(oss_db: Target, order: list[int], repeats: list[int]) -> None:
    """Whatever order (and however often) updates arrive, the newest changed_at wins, once each."""
    shop = f"p-{next(_EXAMPLES)}"  # each example's own store (and webhook-ids) in the test's database
    store = OssStore(oss_db)
    labels = ["Order Received", "Processing", "On Hold", "Processing", "Partially Shipped", "Order Shipped"]
    for k in [*order, *repeats]:
        when = datetime(2024, 5, 1, 12, k, tzinfo=timezone.utc)
        body = payload(store=shop, label=labels[k], changed_at=when.isoformat())
        body["packages"] = [{"tracking": f"T{k}", "carrier": "UPS", "shipped_at": when.isoformat(), "items": []}]
        store.apply(body, when, f"{shop}-rec-{k}", 0.0)  # type: ignore[arg-type]
    view = store.load(shop, "1001")
    assert view is not None
    assert view.label == "Order Shipped"
    assert [e.changed_at.minute for e in view.history] == [5, 4, 3, 2, 1, 0]
    assert len(view.packages) == 6
    store.close()


def test_the_statusctl_database_is_refused_as_the_oss_database(oss_db: Target) -> None:
    from statusctl.domain.errors import DatabaseError
    from statusctl.storage.backends import open_database

    open_database(oss_db, create=True).close()  # the main database's tables, in what was to be the OSS's
    with pytest.raises(DatabaseError, match="is the statusctl database, not the OSS's: give the OSS a database"):
        OssStore(oss_db)


def test_many_reading_threads_share_a_few_connections(oss_db: Target) -> None:
    """A PostgreSQL server shared by several OSS processes must not get a connection per worker thread."""
    from concurrent.futures import ThreadPoolExecutor

    from statusctl.oss.store import READERS

    store = OssStore(oss_db)
    opened: list[object] = []
    open_one = store._readers._open
    store._readers._open = lambda: opened.append(open_one()) or opened[-1]  # type: ignore[method-assign]
    with ThreadPoolExecutor(4 * READERS) as pool:
        assert not any(pool.map(lambda n: store.find(f"N{n}", "90210"), range(20 * READERS)))
    assert 1 <= len(opened) <= READERS
    store.close()


def test_a_target_given_as_text_is_a_file_or_a_postgresql_url(tmp_path: Path) -> None:
    from statusctl.domain.errors import DatabaseError

    OssStore(str(tmp_path / "oss.db")).close()  # a path as a string, as from Python
    assert (tmp_path / "oss.db").stat().st_mode & 0o777 == 0o600
    with pytest.raises(DatabaseError, match="the folder .*/no does not exist"):
        OssStore(str(tmp_path / "no" / "oss.db"))
    with pytest.raises(DatabaseError, match="neither a file path nor a postgresql:// URL") as info:
        OssStore("mysql://u:hunter2@db/oss")
    assert "hunter2" not in str(info.value)
