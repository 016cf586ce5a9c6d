"""The commands that fire status events: fire, ship, cancel and bulk apply."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from statusctl.core.changes import ChangeSession, Result
from statusctl.core.inputs import Row, csv_rows, detect_format, display_path, jsonl_rows, open_input
from statusctl.core.settings import use_status_updates
from statusctl.domain.errors import InputError, StatusctlError, StatusUpdatesOff, shown
from statusctl.domain.events import check_event
from statusctl.storage.db import Database

APPLY_FIELDS = ["action", "event", "order", "sku", "quantity", "tracking", "carrier", "note"]
FLUSH_EVERY = 5000
_EMPTY = (None, "")  # an optional field left out or empty (a test inline: apply asks it six times a row)
T = TypeVar("T")


def require_updates_on(db: Database) -> None:
    if not use_status_updates(db):
        raise StatusUpdatesOff(
            "Status updates are off (UseStatusUpdates is false), so nothing was changed; "
            "turn them on with `statusctl config set UseStatusUpdates true`."
        )


def _run(db: Database, work: Callable[[ChangeSession], T]) -> T:
    """One command in one transaction, run again from the start after a PostgreSQL deadlock."""
    require_updates_on(db)
    for attempt in db.transactions():
        with attempt as conn:
            session = ChangeSession(conn)
            result = work(session)
            session.flush()
    return result


def parse_item(spec: str) -> tuple[str, int | None]:
    """`SKU` or `SKU:QTY`."""
    sku, sep, qty = spec.rpartition(":")
    if not sep:
        return spec.strip(), None
    digits = qty.strip()
    # isdigit() alone also takes '²' (int() refuses it), and int() refuses more than 4300 digits.
    number = int(digits) if digits.isascii() and digits.isdigit() and len(digits.lstrip("0")) <= 7 else 0
    if number < 1:
        raise InputError(f"--item {shown(spec)}: the quantity after ':' must be a whole number of at least 1 (at most 1000000).")
    if not sku.strip():
        raise InputError(f"--item {shown(spec)}: the SKU is empty.")
    return sku.strip(), number


NOTE_LIMIT = 2000
TRACKING_LIMIT = 100  # also for the carrier


def option_text(flag: str, value: str | None, limit: int) -> str | None:
    """A free-text option as `apply` takes the same field: trimmed, no NUL, at most `limit` characters."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise InputError(f"{flag} contains a NUL character.")
    if len(value.strip()) > limit:
        raise InputError(f"{flag} is longer than {limit} characters.")
    return value.strip()


def fire(db: Database, event: str, order: str, skus: list[str], note: str | None = None) -> Result:
    name = check_event(event)
    note = option_text("--note", note, NOTE_LIMIT)
    return _run(db, lambda s: s.fire(order, name, skus, note))


def ship(
    db: Database, order: str, items: list[str], tracking: str | None, carrier: str | None, note: str | None = None
) -> Result:
    tracking = option_text("--tracking", tracking, TRACKING_LIMIT)
    carrier = option_text("--carrier", carrier, TRACKING_LIMIT)
    note = option_text("--note", note, NOTE_LIMIT)
    if carrier and not tracking:
        raise InputError("--carrier needs --tracking.")
    parsed = [parse_item(i) for i in items]
    skus = [sku for sku, _ in parsed]
    for sku in skus:
        # Each --item is checked against what is left before any is applied: a repeat would over-ship.
        if skus.count(sku) > 1:
            raise InputError(f"--item {shown(sku)} is given more than once; give it once with its total (SKU:QTY).")
    return _run(db, lambda s: s.ship(order, parsed, tracking, carrier, note))


def cancel(db: Database, order: str, skus: list[str], note: str | None = None) -> Result:
    note = option_text("--note", note, NOTE_LIMIT)
    return _run(db, lambda s: s.cancel(order, skus, note))


@dataclass(slots=True)
class Step:
    row: Row
    action: str
    order: str
    event: str | None
    sku: str | None
    quantity: int | None
    tracking: str | None
    carrier: str | None
    note: str | None


def _rows(path: Path) -> Iterator[Row]:
    with open_input(path) as file:
        kind = detect_format(path, file.head(), None)
        yield from jsonl_rows(file, APPLY_FIELDS) if kind in ("jsonl", "json") else csv_rows(
            file, ["action", "order"], [f for f in APPLY_FIELDS if f not in ("action", "order")]
        )


def _steps(path: Path) -> Iterator[Step]:
    rows = _rows(path)
    for row in rows:
        fields = row.fields  # an empty optional field (in _EMPTY) needs no checking: most rows leave several empty
        action = (row.text("action") or "").lower()
        if action not in ("fire", "ship", "cancel"):
            raise row.error("action", f"must be fire, ship or cancel, not {action[:20]!r}")
        event = row.text("event", required=action == "fire", limit=50) if fields.get("event") not in _EMPTY or action == "fire" \
            else None
        if event is not None:
            if action != "fire":
                raise row.error("event", f"only applies to fire, not {action}")
            try:
                event = check_event(event)
            except StatusctlError as exc:
                raise row.error("event", str(exc).rstrip(".")) from None
        sku = row.text("sku", required=False, limit=100) if fields.get("sku") not in _EMPTY else None
        quantity = row.quantity("quantity", required=False) if fields.get("quantity") not in _EMPTY else None
        if quantity is not None and (action != "ship" or sku is None):
            raise row.error("quantity", "only applies to ship with a sku")
        tracking = row.text("tracking", required=False, limit=TRACKING_LIMIT) if fields.get("tracking") not in _EMPTY else None
        carrier = row.text("carrier", required=False, limit=TRACKING_LIMIT) if fields.get("carrier") not in _EMPTY else None
        if (tracking or carrier) and action != "ship":
            raise row.error("tracking" if tracking else "carrier", f"only applies to ship, not {action}")
        if carrier and not tracking:
            raise row.error("carrier", "needs a tracking number in the same row")
        order = row.text("order", limit=50)
        assert order is not None
        note = row.text("note", required=False, limit=NOTE_LIMIT) if fields.get("note") not in _EMPTY else None
        yield Step(row, action, order, event, sku, quantity, tracking, carrier, note)


@dataclass
class ApplySummary:
    rows: int
    orders: int  # distinct orders the rows name
    labels_changed: int  # label changes (an order's or an item's), as the label history counts them
    records: int  # at most one per order: the whole change of all its rows
    internal_only: int  # orders whose change notifies but has nowhere to go
    skipped_events: dict[str, int]


def apply_file(db: Database, path: Path) -> ApplySummary:
    """Apply every row of a CSV or JSON Lines file, or none (one transaction, batched writes).

    One record per order (and destination) carries the whole change of all the rows for it."""
    with _gc_paused():
        return _apply_file(db, path)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC finds nothing to free in an apply, but it rescans the hundreds of
    thousands of rows and states held for it again and again (~8 % of a 100,000-row apply)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _apply_file(db: Database, path: Path) -> ApplySummary:
    steps = list(_steps(path))
    if not steps:
        raise InputError(f"{display_path(path)}: holds no rows.")
    require_updates_on(db)
    numbers = list(dict.fromkeys(s.order for s in steps))
    for attempt in db.transactions():  # again from the start after a PostgreSQL deadlock
        with attempt as conn:
            summary = _apply_steps(ChangeSession(conn, group=True), steps, numbers)
    return summary


def _apply_steps(session: ChangeSession, steps: list[Step], numbers: list[str]) -> ApplySummary:
    session.load(numbers)
    with session.streaming():
        return _run_steps(session, steps, numbers)


def _run_steps(session: ChangeSession, steps: list[Step], numbers: list[str]) -> ApplySummary:
    summary = ApplySummary(len(steps), len(numbers), 0, 0, 0, {})
    for count, step in enumerate(steps, start=1):
        try:
            result = _apply_step(session, step)
        except StatusctlError as exc:
            raise InputError(f"{step.row.at(_blame(session, step))}: {str(exc).rstrip('.')}.") from None
        for name in result.skipped:
            summary.skipped_events[name] = summary.skipped_events.get(name, 0) + 1
        if count % FLUSH_EVERY == 0:
            session.flush()
    summary.labels_changed = session.labels_changed
    summary.records, summary.internal_only = session.queue_grouped()
    session.flush()
    return summary


def _blame(session: ChangeSession, step: Step) -> str:
    """The field of a row whose step failed that the error is about (errors name line and field)."""
    try:
        order = session.order(step.order)
    except StatusctlError:
        return "order"
    if step.sku is None:
        # fire without sku fails for an item event; ship/cancel of the whole order for its state.
        return "sku" if step.action == "fire" else "order"
    item = next((i for i in order.items if i.sku == step.sku), None)
    if item is None or item.cancelled or step.quantity is None:
        return "sku"
    return "quantity"


def _apply_step(session: ChangeSession, step: Step) -> Result:
    skus = [step.sku] if step.sku else []
    if step.action == "fire":
        assert step.event is not None
        return session.fire(step.order, step.event, skus, step.note)
    if step.action == "ship":
        items = [(step.sku, step.quantity)] if step.sku else []
        return session.ship(step.order, items, step.tracking, step.carrier, step.note)
    return session.cancel(step.order, skus, step.note)
