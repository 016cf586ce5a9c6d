"""`fire`, `ship`, `cancel` and `apply`: the commands that fire status events."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statusctl.cli.common import JsonOpt, open_db, plural, print_json, say

if TYPE_CHECKING:
    from statusctl.core.changes import Result

NoteOpt = Annotated[str | None, typer.Option("--note", help="A note for the customer, sent with the update.")]
ItemsOpt = Annotated[list[str] | None, typer.Option("--item", help="SKU (repeatable).")]


def _report(result: Result, json: bool) -> None:
    if json:
        print_json(result.as_dict())
        return
    for name in result.skipped:
        say(f"Event {name} does not fire (its 'fires' is off), so it did nothing.")
    if not result.changes:
        say(f"Order {result.order}: no label changed, nothing queued.")
        return
    for line in result.changes:
        say(f"Order {result.order}: {line}")
    if result.record:
        say(f"Queued record {result.record} for {result.destination}.")
    elif result.internal_only:
        say("Internal only: this store's cart cannot take updates and no OSS is set.")
    else:
        say("Internal only: no changed label notifies the cart.")


def fire(
    event: Annotated[str, typer.Argument(help="Status event, see `statusctl events list`.")],
    order: Annotated[str, typer.Argument(help="Order number.")],
    item: ItemsOpt = None,
    note: NoteOpt = None,
    json: JsonOpt = False,
) -> None:
    """Fire a status event by hand on an order (or some of its items)."""
    from statusctl.core.actions import fire as do_fire

    _report(do_fire(open_db(), event, order, item or [], note), json)


def ship(
    order: Annotated[str, typer.Argument(help="Order number.")],
    item: Annotated[list[str] | None, typer.Option("--item", help="SKU or SKU:QTY (repeatable; default: all left).")] = None,
    tracking: Annotated[str | None, typer.Option("--tracking", help="Tracking number of the package.")] = None,
    carrier: Annotated[str | None, typer.Option("--carrier", help="Carrier, e.g. UPS.")] = None,
    note: NoteOpt = None,
    json: JsonOpt = False,
) -> None:
    """Ship items in one package; fires item-shipped and order-(partially-)shipped."""
    from statusctl.core.actions import ship as do_ship

    _report(do_ship(open_db(), order, item or [], tracking, carrier, note), json)


def cancel(
    order: Annotated[str, typer.Argument(help="Order number.")],
    item: ItemsOpt = None,
    note: NoteOpt = None,
    json: JsonOpt = False,
) -> None:
    """Cancel some items (item-cancelled) or the whole order (order-cancelled)."""
    from statusctl.core.actions import cancel as do_cancel

    _report(do_cancel(open_db(), order, item or [], note), json)


def apply(
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines: action, event, order, sku, quantity, tracking, carrier, note; a regular file (not a pipe or device) of at most 256 MiB and 1,000,000 rows.")],
    json: JsonOpt = False,
) -> None:
    """Bulk fire/ship/cancel from a file, all rows or none.

    However many rows touch an order, it gets at most one record carrying the whole
    change of all of them (final labels, changed items, every package, the notes);
    the label history keeps every step.
    """
    from statusctl.core.actions import apply_file

    s = apply_file(open_db(), file)
    if json:
        print_json(vars(s))
        return
    say(f"Applied {plural(s.rows, 'row')} to {plural(s.orders, 'order')}: {plural(s.labels_changed, 'label')} changed, "
        f"{plural(s.records, 'record')} queued" + (f", {s.internal_only} internal only" if s.internal_only else "") + ".")
    for name, count in sorted(s.skipped_events.items()):
        say(f"Event {name} does not fire (its 'fires' is off): skipped {plural(count, 'time')}.")
