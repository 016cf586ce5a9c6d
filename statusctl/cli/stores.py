"""`statusctl stores`, `statusctl carts` and `statusctl oss`: where updates go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from statusctl.cli.common import JsonOpt, YesOpt, confirm, open_db, print_json, say, sub_app, table

app = sub_app("Stores: a cart type, its URL, credentials and options.")
oss_app = sub_app("The Order Status System: for carts that cannot take status updates.")


def carts(json: JsonOpt = False) -> None:
    """The cart matrix: what each cart type accepts."""
    from statusctl.cli.common import notes
    from statusctl.domain.matrix import CART_TYPES, COMMON_OPTIONS

    if json:
        print_json([
            {"cart": c.name, "order_status": c.order_status, "item_status": c.item_status, "tracking": c.tracking,
             "customer_note": c.note, "how": c.how, "accepts_updates": c.accepts_updates, "secrets": list(c.secrets),
             "options": c.options, "common_options": COMMON_OPTIONS, "url": c.url_hint, "has_test": c.has_test}
            for c in CART_TYPES.values()
        ])
        return
    table(
        None,
        ["cart type", "order status", "item status", "tracking", "customer note", "how"],
        [[c.name, c.order_status, c.item_status, c.tracking, c.note, c.how] for c in CART_TYPES.values()],
    )
    notes([f"Every cart type also takes --option {key}: {meaning}." for key, meaning in COMMON_OPTIONS.items()])


def read_secrets(items: list[str] | None) -> list[str] | None:
    """`--secret KEY=-` items with their value read from stdin: hidden prompt on a terminal, else one line each."""
    import sys

    from statusctl.domain.errors import InputError

    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or value != "-":
            out.append(item)
            continue
        if sys.stdin.isatty():
            value = typer.prompt(f"Secret {key.strip()} (typing is hidden)", hide_input=True)
        else:
            value = sys.stdin.readline().rstrip("\r\n")
        if not value.strip():
            raise InputError(f"--secret {key.strip()}=-: no value was read from stdin.")
        out.append(f"{key}={value}")
    return out if items is not None else None


SecretOpt = Annotated[list[str] | None, typer.Option(
    "--secret", callback=read_secrets, help="KEY=VALUE, stored in the database; KEY=- reads the value from stdin "
    "(typed hidden on a terminal), so it stays out of `ps`.")]
SecretEnvOpt = Annotated[
    list[str] | None, typer.Option("--secret-env", help="KEY=ENVVAR, only the variable's name is stored.")
]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", help="KEY=VALUE store option.")]


@app.command()
def add(
    name: str,
    cart: Annotated[str, typer.Option("--cart", help="Cart type (see `statusctl carts`).")],
    url: Annotated[str, typer.Option("--url", help="Base URL the adapter builds on.")],
    secret: SecretOpt = None,
    secret_env: SecretEnvOpt = None,
    option: OptionOpt = None,
) -> None:
    """Add a store."""
    from statusctl.cli.common import warn
    from statusctl.core.labels import all_labels
    from statusctl.core.stores import (
        add_store,
        describe_destination,
        label_note,
        oss_store,
        unset_env_warning,
    )

    db = open_db()
    store = add_store(db, name, cart, url, secret or [], secret_env or [], option or [])
    say(f"Store {store.name!r} ({store.cart}) added; its records go to {describe_destination(store, oss_store(db))}.")
    if warning := unset_env_warning(store):
        warn(warning)
    if note := label_note(store, all_labels(db)):
        say(f"Labels: {note}")


def _store_dict(store: object, oss: str | None, labels: list[Any]) -> dict[str, object]:
    from statusctl.core.stores import describe_destination, label_note
    from statusctl.domain.limits import from_options
    from statusctl.domain.stores import Store, destination

    assert isinstance(store, Store)
    return {
        "name": store.name, "cart": store.cart, "url": store.shown_url, "secrets": store.masked_secrets(),
        "options": store.options, "limits": from_options(store.options).as_dict(),
        "destination": destination(store, oss),
        "destination_text": describe_destination(store, oss), "is_oss": store.name == oss,
        "label_note": label_note(store, labels),
    }


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """Every store (secrets masked)."""
    from statusctl.core.labels import all_labels
    from statusctl.core.stores import all_stores, oss_store

    db = open_db()
    oss, labels = oss_store(db), all_labels(db)
    stores = [_store_dict(s, oss, labels) for s in all_stores(db)]
    if json:
        print_json(stores)
        return
    table(None, ["store", "cart", "url", "secrets", "records go to"],
          [[s["name"], s["cart"], s["url"], ", ".join(f"{k}={v}" for k, v in s["secrets"].items()),  # type: ignore[attr-defined]
            s["destination_text"]] for s in stores], optional=["secrets"])


@app.command()
def show(name: str, json: JsonOpt = False) -> None:
    """One store: settings (secrets masked), its sending limits and where its records go."""
    from statusctl.core.labels import all_labels
    from statusctl.core.stores import oss_store
    from statusctl.domain.limits import from_options
    from statusctl.storage.stores import get_store

    db = open_db()
    store = get_store(db, name)
    data = _store_dict(store, oss_store(db), all_labels(db))
    if json:
        print_json(data)
        return
    rows = [["cart", store.cart], ["url", store.shown_url]]
    rows += [[f"secret {k}", v] for k, v in store.masked_secrets().items()]
    limits = from_options(store.options).as_dict()  # the stack's per-store limits, shown with their defaults
    rows += [[f"option {k}", v] for k, v in sorted(store.options.items()) if k not in limits]
    rows += [[f"option {k}", ("no limit" if v is None else f"{v:g}") + ("" if k in store.options else " (default)")]
             for k, v in limits.items()]
    rows.append(["records go to", str(data["destination_text"])])
    if data["label_note"]:
        rows.append(["labels", str(data["label_note"])])
    table(f"Store {store.name}", ["setting", "value"], rows)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str,
    url: Annotated[str | None, typer.Option("--url", help="A new base URL.")] = None,
    secret: SecretOpt = None,
    secret_env: SecretEnvOpt = None,
    option: OptionOpt = None,
    no_test: Annotated[bool, typer.Option("--no-test", help="Save without testing the new settings first.")] = False,
) -> None:
    """Change a store in place (its orders and queued records stay): the new settings are tested like
    `stores test` first, and nothing is changed when the test fails (unless --no-test).

    A secret given replaces that secret (by value or by variable); options given are added or replaced.
    """
    from statusctl.cli.common import warn
    from statusctl.core.storeedit import set_store
    from statusctl.core.stores import unset_env_warning
    from statusctl.delivery.probe import check_store

    if url is None and not (secret or secret_env or option):  # a usage error (exit 2), as `stack drop` naming none
        ctx.fail("Nothing to change: give --url, --secret, --secret-env or --option.")
    store, changed, message = set_store(open_db(), name, url, secret or [], secret_env or [], option or [],
                                        check=None if no_test else check_store)
    say(f"Store {store.name!r} changed: {', '.join(changed) or 'nothing (the same settings)'}; "
        + (f"test OK: {message}" if message is not None else "not tested (--no-test)") + ".")
    if warning := unset_env_warning(store):
        warn(warning)


@app.command()
def remove(name: str, yes: YesOpt = False) -> None:
    """Remove a store with no orders and nothing on the stack."""
    from statusctl.core.stores import remove_store

    confirm(f"Remove store {name!r}?", yes, f"remove store {name!r}")
    remove_store(open_db(), name)
    say(f"Store {name!r} removed.")


@app.command()
def test(name: str, json: JsonOpt = False) -> None:
    """Check reachability and credentials with a harmless read."""
    from statusctl.cli.common import warn
    from statusctl.delivery.probe import test_store
    from statusctl.domain.display import printable
    from statusctl.domain.errors import ExitCode

    ok, message = test_store(open_db(), name)
    if json:
        print_json({"store": name, "ok": ok, "message": message})
    elif ok:
        say("OK: " + message)
    else:  # a failure is an error like any other: on stderr, so `stores test x > log` still shows it
        warn("FAILED: " + printable(message))
    if not ok:
        raise typer.Exit(ExitCode.ERROR)


@oss_app.command("set")
def oss_set(
    store: Annotated[str | None, typer.Argument(help="The store of cart type oss (or webhook) to send to.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop sending to an OSS.")] = False,
) -> None:
    """Send updates of carts that cannot take them to this store."""
    from statusctl.core.stores import set_oss
    from statusctl.domain.errors import InputError

    if clear == (store is not None):
        raise InputError("Give a STORE, or --clear.")
    name = set_oss(open_db(), None if clear else store)
    say(f"Updates of carts that cannot take them now go to store {name!r}." if name else "No OSS is set any more.")


@oss_app.command("serve")
def oss_serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free port).")] = 8470,
    db: Annotated[str | None, typer.Option(
        "--db", help="The OSS's own database: a SQLite file or a postgresql:// URL (default: beside the main one).")] = None,
    secret_env: Annotated[
        list[str] | None, typer.Option("--secret-env", help="Env variable holding whsec_ secret(s) (repeatable; default STATUSCTL_OSS_SECRET).")
    ] = None,
    header: Annotated[Path | None, typer.Option("--header", help="HTML file shown above every page.")] = None,
    footer: Annotated[Path | None, typer.Option("--footer", help="HTML file shown below every page.")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option("--forwarded-allow-ips", help="Reverse proxies (addresses or networks, comma-separated)"
                     " whose X-Forwarded-For is believed; without it, no client's is."),
    ] = None,
) -> None:
    """Run the Order Status System server (default secret variable: STATUSCTL_OSS_SECRET).

    Without --db its database is statusctl-oss.db beside the statusctl database, which must exist.
    Several OSS processes (on several machines) may share one PostgreSQL database.
    """
    from statusctl.core.paths import db_target, oss_db_path
    from statusctl.domain.errors import ConfigError
    from statusctl.oss.server import secrets_from_env, serve
    from statusctl.storage.backends import Target

    target: Target
    if db is None:
        main = open_db()  # a missing or mistyped statusctl database is refused, as by every command
        main.close()
        if main.dialect == "postgresql":
            raise ConfigError(f"The statusctl database is {main.name}, a PostgreSQL database, so there is no "
                              "folder to put the OSS's own database in; give it with --db (a file or a URL).")
        target = oss_db_path(main.path)
    else:
        target = db_target(db)  # a PostgreSQL URL, or a file path; a URL of another scheme is refused
    serve(host, port, target, secrets_from_env(*(secret_env or [])), header, footer,
          forwarded_allow_ips=forwarded_allow_ips)
