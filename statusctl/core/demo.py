"""`statusctl demo`: the whole flow on a temporary database against a demo cart on loopback."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusctl.core import actions, orders, settings, stack, stores
from statusctl.core.controller import DrainReport, drain
from statusctl.core.db import Database
from statusctl.core.init import initialize


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


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="statusctl-demo-") as tmp:
        yield Path(tmp)


def run_demo(step: Callable[[str], None] = lambda s: None, workdir: Path | None = None) -> DemoResult:
    """Load the examples, ship and cancel a few orders, drain the stack into the demo cart."""
    from statusctl.democart import DemoCart

    result = DemoResult()

    def note(text: str) -> None:
        result.steps.append(text)
        step(text)

    examples = examples_dir()
    with _workdir(workdir) as tmp, DemoCart() as cart:
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
            csv_summary = orders.import_orders(db, examples / "orders.csv", "demo")
            json_summary = orders.import_orders(db, examples / "orders.json", "demo")
            note(f"Imported {len(csv_summary.imported) + len(json_summary.imported)} orders from examples/.")
            actions.fire(db, "order-approved", "1002", [])
            note("Fired order-approved on 1002 (→ Processing).")
            actions.ship(db, "1001", [], "1Z999AA10123456784", "UPS", "Thanks for your order!")
            note("Shipped all of 1001 with UPS 1Z999AA10123456784 (→ Order Shipped).")
            actions.ship(db, "1003", ["POSTER:3"], "9400111899223197428490", "USPS")
            note("Shipped the posters of 1003 with USPS (→ Partially Shipped).")
            actions.ship(db, "1003", ["MUG-1", "TEE-M:2"], "794698512345", "FedEx")
            note("Shipped the rest of 1003 with FedEx (→ Order Shipped).")
            actions.cancel(db, "1005", ["INK-B"])
            note("Cancelled the ink of 1005 (→ Item Cancelled).")
            actions.cancel(db, "1006", [], "Sorry: out of stock")
            note("Cancelled order 1006 (→ Cancelled).")
            queued = len(stack.list_records(db))
            note(f"{queued} status update records are on the stack; draining it now.")
        finally:
            db.close()
        result.report = drain(path)
        note(f"Sent {result.report.sent} records to the demo cart.")
        db = Database.open(path)
        try:
            result.history = stack.history(db)
            result.orders = orders.list_orders(db)
        finally:
            db.close()
        result.received = list(cart.received)
    note("Removed the temporary database and stopped the demo cart.")
    return result
