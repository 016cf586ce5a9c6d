"""`statusctl demo`: the whole flow on a temporary database against a demo cart on loopback."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusctl.core import actions, orders, settings, stores
from statusctl.core.init import initialize
from statusctl.delivery.controller import DrainReport, drain
from statusctl.storage import stack
from statusctl.storage.db import Database


def examples_dir() -> Path:
    """The sample files: installed inside the package, or beside it in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "examples", here.parent / "examples"):
        if (candidate / "orders.csv").exists():
            return candidate
    raise FileNotFoundError("the examples folder (orders.csv) is missing from this installation")


@dataclass
class DemoResult:
    steps: list[str] = field(default_factory=list)
    report: DrainReport | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    oss_url: str | None = None
    oss_link: str | None = None


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="statusctl-demo-") as tmp:
        yield Path(tmp)


def run_demo(
    step: Callable[[str], None] = lambda s: None,
    workdir: Path | None = None,
    *,
    oss: bool = False,
    hold: Callable[[DemoResult], None] = lambda r: None,
) -> DemoResult:
    """Load the examples, ship and cancel a few orders, drain the stack into the demo cart.

    With `oss`, an Order Status System also runs on loopback and the JSON
    orders belong to a store whose cart cannot take updates, so their records
    go to the OSS. `hold` is called with the result while the servers still run.
    """
    from statusctl.democart import DemoCart

    result = DemoResult()

    def note(text: str) -> None:
        result.steps.append(text)
        step(text)

    examples = examples_dir()
    with _workdir(workdir) as tmp, DemoCart() as cart, contextlib.ExitStack() as stack_:
        path = tmp / "statusctl.db"
        db = Database.open(path)
        try:
            initialize(db)
            note(f"Created a temporary database at {path}.")
            settings.set_value(db, "UseStatusUpdates", "true")
            note("Turned status updates on (UseStatusUpdates = true).")
            stores.add_store(db, "demo", "seti", cart.url, [f"user={cart.user}", f"password={cart.password}"], [],
                             ["code=DEMO"])
            note(f"Added store 'demo' (seti protocol) for the demo cart at {cart.url}.")
            json_store = "demo"
            if oss:
                secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
                result.oss_url = _start_oss(db, stack_, tmp, secret)
                json_store = "counter"
                note(f"Started the Order Status System at {result.oss_url}; store 'counter' (a cart that cannot "
                     "take updates) sends its records there.")
            csv_summary = orders.import_orders(db, examples / "orders.csv", "demo")
            json_summary = orders.import_orders(db, examples / "orders.json", json_store)
            note(f"Imported {len(csv_summary.imported) + len(json_summary.imported)} orders from examples/.")
            for text in _day(db, oss):
                note(text)
            note(f"{len(stack.list_records(db))} status update records are on the stack; draining it now.")
        finally:
            db.close()
        result.report = drain(path)
        note(f"Sent {result.report.sent} records.")
        _read_back(path, result)
        result.received = list(cart.received)
        if oss and result.oss_url:
            from statusctl.oss.links import derive_link_key, make_link

            result.oss_link = make_link("2001", "02139", derive_link_key(secret), store="counter", base_url=result.oss_url)
        hold(result)
    note("Removed the temporary database and stopped the demo servers.")
    return result


def _read_back(path: Path, result: DemoResult) -> None:
    """What the drain left: the delivery history and the orders' labels."""
    db = Database.open(path)
    try:
        result.history = stack.history(db)
        result.orders = orders.list_orders(db)
    finally:
        db.close()


def _start_oss(db: Database, stack_: contextlib.ExitStack, tmp: Path, secret: str) -> str:
    """Start an OSS on loopback (stopped with `stack_`), make it the OSS store, and add store 'counter'
    (a cart that cannot take updates, so its records go there); the OSS's URL."""
    from statusctl.oss.server import Background

    server = stack_.enter_context(Background.oss(tmp / "oss.db", [secret]))
    stores.add_store(db, "oss", "oss", f"{server.url}/api/updates", [f"secret={secret}"], [], [])
    stores.set_oss(db, "oss")
    stores.add_store(db, "counter", "none", "https://counter.invalid", [], [], [])
    return str(server.url)


def _day(db: Database, oss: bool) -> list[str]:
    """A few of the day's status changes; returns what was done."""
    actions.fire(db, "order-approved", "1002", [])
    actions.ship(db, "1001", [], "1Z999AA10123456784", "UPS", "Thanks for your order!")
    actions.ship(db, "1003", ["POSTER:3"], "9400111899223197428490", "USPS")
    actions.ship(db, "1003", ["MUG-1", "TEE-M:2"], "794698512345", "FedEx")
    actions.cancel(db, "1005", ["INK-B"])
    actions.cancel(db, "1006", [], "Sorry: out of stock")
    done = [
        "Fired order-approved on 1002 (→ Processing).",
        "Shipped all of 1001 with UPS 1Z999AA10123456784 (→ Order Shipped).",
        "Shipped the posters of 1003 with USPS (→ Partially Shipped), then the rest with FedEx (→ Order Shipped).",
        "Cancelled the ink of 1005 (→ Item Cancelled) and all of 1006 (→ Cancelled).",
    ]
    if oss:
        actions.fire(db, "order-approved", "2001", [])
        actions.ship(db, "2001", ["MUG-1"], "1Z999AA10123456785", "UPS", "The book follows next week.")
        done.append("Approved 2001 and shipped its mug with UPS (→ Partially Shipped), for the OSS.")
    return done
