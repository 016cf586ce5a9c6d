"""`statusctl labels` and `statusctl events`: the labels and the status events grid."""

from __future__ import annotations

from typing import Annotated

import typer

from statusctl.cli.common import JsonOpt, YesOpt, confirm, open_db, print_json, say, sub_app, table

app = sub_app("Status labels: built-ins and your own, with per-cart values.")
events_app = sub_app("Status events: which labels each event assigns, whether it fires and notifies the cart.")


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """Every label with its scope and per-cart values."""
    from statusctl.core.labels import all_labels

    labels = all_labels(open_db())
    if json:
        print_json([{"name": x.name, "scope": x.scope, "builtin": x.builtin, "mappings": x.mappings} for x in labels])
        return
    rows = [
        [x.name, x.scope, "yes" if x.builtin else "", ", ".join(f"{c}={v}" for c, v in x.mappings.items())]
        for x in labels
    ]
    table(None, ["label", "scope", "built in", "cart values"], rows)


@app.command()
def add(
    name: str,
    scope: Annotated[
        str | None, typer.Option("--scope", help="item, order or both (a new label: both); checked only when given.")
    ] = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="CART=VALUE, the label's value in that cart type (checked against what the cart takes).")] = None,
) -> None:
    """Add a label (or set the cart values of an existing one: give only --map).

    Names may hold quotes ("Customer's pickup"); 1-50 characters, no control characters.
    """
    from statusctl.core.labels import add_label
    from statusctl.domain.errors import shown

    label = add_label(open_db(), name, scope, map_ or [])
    say(f"Label {shown(label.name)} ({label.scope}) saved.")


@app.command()
def remove(name: str) -> None:
    """Remove a label you added and nothing uses."""
    from statusctl.core.labels import remove_label
    from statusctl.domain.errors import shown

    say(f"Label {shown(remove_label(open_db(), name))} removed.")


def _grid(json: bool) -> None:
    from statusctl.core.events import all_events
    from statusctl.domain.events import FIRED_BY

    events = all_events(open_db())
    if json:
        print_json([
            {"event": e.name, "item_label": e.item_label, "order_label": e.order_label, "fires": e.fires,
             "notify_cart": e.notify, "fired_by": FIRED_BY[e.name]}
            for e in events
        ])
        return
    table(
        None,
        ["event", "item label", "order label", "fires", "notify cart"],
        [[e.name, e.item_label, e.order_label, "yes" if e.fires else "no", "yes" if e.notify else "no"] for e in events],
    )


@events_app.command("list")
def events_list(json: JsonOpt = False) -> None:
    """The grid: event | item label | order label | fires | notify cart."""
    _grid(json)


@events_app.command("set")
def events_set(
    event: str,
    item_label: Annotated[str | None, typer.Option("--item-label", help="Label for the items ('' clears it).")] = None,
    order_label: Annotated[str | None, typer.Option("--order-label", help="Label for the order ('' clears it).")] = None,
    fire: Annotated[bool | None, typer.Option("--fire/--no-fire", help="Whether the event fires at all.")] = None,
    notify: Annotated[bool | None, typer.Option("--notify-cart/--no-notify-cart", help="Whether it notifies the cart.")] = None,
) -> None:
    """Change what one event does."""
    from statusctl.core.events import set_event

    e = set_event(open_db(), event, item_label=item_label, order_label=order_label, fires=fire, notify=notify)
    say(f"{e.name}: item label {e.item_label or '–'}, order label {e.order_label or '–'}, "
        f"fires {'yes' if e.fires else 'no'}, notify cart {'yes' if e.notify else 'no'}.")


@events_app.command("defaults")
def events_defaults(yes: YesOpt = False) -> None:
    """Load the default status events (replaces your changes)."""
    from statusctl.core.events import restore_defaults

    confirm("Replace every event's settings with the defaults?", yes, "replace the events with the defaults")
    db = open_db()
    restore_defaults(db)
    say("Default status events loaded.")
