"""Fixtures for the OSS tests: a signed-update sender, a controllable clock, an app on tmp_path."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the OSS needs the statusctl[oss] extra")

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 in its TestClient; httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from statusctl.carts.signing import headers as signed_headers
from statusctl.oss.app import create_app
from statusctl.storage.backends import Target
from statusctl.storage.oss import open_oss_database

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def payload(
    number: str = "1001",
    *,
    store: str = "shop",
    label: str | None = "Processing",
    previous: str | None = "Order Received",
    postal: str = "90210",
    changed_at: str = "2024-05-01T11:00:00Z",
    items: list[dict[str, Any]] | None = None,
    packages: list[dict[str, Any]] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """An `order.status_changed` body as the oss destination sends it (without id/timestamp)."""
    return {
        "type": "order.status_changed",
        "store": store,
        "order": {
            "number": number,
            "cart_order_id": None,
            "label": label,
            "previous_label": previous,
            "postal_code": postal,
            "date": "2024-04-30",
        },
        "items": items
        if items is not None
        else [
            {"sku": "MUG-1", "cart_line_id": None, "name": "Blue mug", "label": None,
             "previous_label": None, "quantity": 2, "shipped": 0, "cancelled": False, "changed": False},
            {"sku": "TEE-M", "cart_line_id": None, "name": "T-shirt (M)", "label": None,
             "previous_label": None, "quantity": 1, "shipped": 0, "cancelled": False, "changed": False},
        ],
        "packages": packages or [],
        "note": note,
        "events": ["order-approved"],
        "changed_at": changed_at,
    }


class Sender:
    """Posts signed updates the way the stack controller does."""

    def __init__(self, client: TestClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.count = 0

    def post(
        self,
        body: dict[str, Any] | bytes,
        *,
        msg_id: str | None = None,
        secret: str = SECRET,
        ts: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> Any:
        self.count += 1
        msg_id = msg_id or f"rec_{self.count:06d}"
        if isinstance(body, dict):
            body = json.dumps({"id": msg_id, "timestamp": int(self.clock()), **body}).encode()
        hdrs = signed_headers(secret, msg_id, body, now=self.clock() if ts is None else ts)
        hdrs["content-type"] = "application/json"
        hdrs.update(extra or {})
        return self.client.post("/api/updates", content=body, headers=hdrs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def oss_db(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """The test's OSS database, once per backend: a SQLite file, or a fresh database on the session's cluster.

    A test about one backend only says so with `@pytest.mark.parametrize("oss_db", ["sqlite"], indirect=True)`.
    """
    if request.param == "sqlite":
        return tmp_path / "oss.db"
    cluster = request.getfixturevalue("pg_server")
    return str(cluster.url(cluster.create_database("oss")))


@pytest.fixture
def client(oss_db: Target, clock: Clock) -> Iterator[TestClient]:
    app = create_app(
        oss_db, [SECRET, OLD_SECRET], "<header id='merchant-header'><b>Acme</b></header>",
        "<footer id='merchant-footer'>© Acme</footer>", clock=clock, lookup_limit=(5, 60.0),
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def sender(client: TestClient, clock: Clock) -> Sender:
    return Sender(client, clock)


def history_rows(oss_db: Target) -> int:
    """The updates recorded in the OSS database (one history row each)."""
    db = open_oss_database(oss_db, migrate=False)
    try:
        row = db.one("SELECT count(*) FROM history")
        assert row is not None
        return int(row[0])
    finally:
        db.close()
