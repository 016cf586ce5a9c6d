"""`statusctl orders`: import, list and show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from statusctl.cli.common import (
    JsonOpt,
    LimitOpt,
    StoreOpt,
    age,
    open_db,
    plural,
    print_json,
    say,
    sub_app,
    table,
)

app = sub_app("Orders: import them, list them, look at one.")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Orders file (CSV or JSON): a regular file (not a pipe or device) of at most 256 MiB and 1,000,000 rows.")],
    store: Annotated[str, typer.Option("--store", help="The store the orders belong to.")],
    format: Annotated[str | None, typer.Option("--format", help="csv or json (default: from the file name).")] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Skip orders this store already has (another store's order with the same number "
        "is an error).")] = False,
    json: JsonOpt = False,
) -> None:
    """Import orders, all or nothing; fires order-imported for each new order."""
    from statusctl.core.orders import import_orders
    from statusctl.domain.errors import InputError, shown

    if format and format not in ("csv", "json"):
        raise InputError(f"--format {shown(format)} must be csv or json.")
    summary = import_orders(open_db(), file, store, format, skip_existing=skip_existing)
    queued = sum(r.record is not None for r in summary.results)
    if json:
        print_json({"imported": summary.imported, "skipped": summary.skipped, "items": summary.items,
                    "records_queued": queued, "status_updates": summary.updates_on})
        return
    say(f"Imported {plural(len(summary.imported), 'order')} ({plural(summary.items, 'item')}) into store {store!r}"
        + (f", skipped {len(summary.skipped)} already present" if summary.skipped else "") + ".")
    if not summary.updates_on:
        say("Status updates are off, so order-imported did not fire (labels stay empty).")
    elif queued:
        say(f"{plural(queued, 'status update record')} queued.")


@app.command("list")
def list_(
    label: Annotated[str | None, typer.Option("--label", help="Only orders with this label.")] = None,
    store: StoreOpt = None,
    limit: LimitOpt = 1000,
    json: JsonOpt = False,
) -> None:
    """Orders with their label and queued records, oldest first."""
    from statusctl.core.listing import cut_note, orders_page

    rows, total = orders_page(open_db(), label=label, store=store, limit=limit, count=not json)
    if json:
        print_json(rows)
        return
    # The day is enough in a list (`orders show` and --json have the time).
    table(None, ["order", "store", "date", "customer", "label", "items", "queued"],
          [[r["number"], r["store"], (r["order_date"] or "")[:10], r["customer_name"], r["label"], r["items"],
            r["queued"]] for r in rows], optional=["items", "queued"])
    if total is not None:
        say(cut_note(len(rows), total))


@app.command()
def show(order: str, json: JsonOpt = False) -> None:
    """One order: items, labels, packages, label history and its records on the stack."""
    import time

    from statusctl.core.orders import show_order

    data = show_order(open_db(), order)
    if json:
        print_json(data)
        return
    say(f"Order {data['number']} · store {data['store']} · {data['order_date']} · {data['customer_name']} "
        f"· postal code {data['ship_postal_code'] or '–'} · label {data['label'] or '–'}")
    table("Items", ["sku", "name", "qty", "shipped", "cancelled", "label"],
          [[i["sku"], i["name"], i["quantity"], i["shipped"], "yes" if i["cancelled"] else "", i["label"]] for i in data["items"]])
    if data["packages"]:
        table("Packages", ["tracking", "carrier", "shipped", "items"],
              [[p["tracking"], p["carrier"], p["shipped"], ", ".join(f"{x['sku']}×{x['quantity']}" for x in p["items"])]
               for p in data["packages"]])
    if data["history"]:
        table("Label history", ["at", "event", "item", "from", "to"],
              [[h["at"], h["event"], h["item"] or "(order)", h["from"], h["to"]] for h in data["history"]])
    if data["stack"]:
        now = time.time()
        table("On the stack", ["record", "destination", "state", "attempts", "age", "events", "last error"],
              [[s["id"], s["destination"], s["state"], s["attempts"], age(now - s["queued"]), ", ".join(s["events"]),
                s["last_error"]] for s in data["stack"]])
    else:
        say("Nothing on the stack for this order.")
