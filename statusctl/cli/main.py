"""The root command: global --db, the sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from statusctl.cli import common
from statusctl.core.errors import DatabaseError, ExitCode, StatusctlError


class _Root(TyperGroup):
    """Turns statusctl's own errors into one sentence on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StatusctlError as exc:
            common.warn(f"Error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except sqlite3.Error as exc:
            common.warn(f"Error: database problem: {exc}.")
            raise typer.Exit(DatabaseError.exit_code) from None
        except OSError as exc:
            if exc.errno == 28:
                common.warn("Error: the disk is full; nothing more was written.")
            else:
                common.warn(f"Error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ") + ".")
            raise typer.Exit(ExitCode.ERROR) from None


app = typer.Typer(
    cls=_Root,
    name="statusctl",
    help="Push order status labels to shopping carts through a reliable stack (outbox).",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    db: Annotated[
        Path | None, typer.Option("--db", help="Database file (default: $STATUSCTL_DB, else the user data directory).")
    ] = None,
) -> None:
    """statusctl: status labels, status events and the stack that delivers them."""
    common.set_db_option(db)


@app.command()
def init() -> None:
    """Create or migrate the database and load the defaults (idempotent); prints its path."""
    from statusctl.core.init import initialize

    db = common.open_db()
    initialize(db)
    print(db.path)


def _register() -> None:
    from statusctl.cli import changes, config, demo, labels, orders, stack, stores

    app.add_typer(config.app, name="config")
    app.add_typer(labels.app, name="labels")
    app.add_typer(labels.events_app, name="events")
    app.command("carts")(stores.carts)
    app.add_typer(stores.app, name="stores")
    app.add_typer(stores.oss_app, name="oss")
    app.add_typer(orders.app, name="orders")
    for command in (changes.fire, changes.ship, changes.cancel, changes.apply):
        app.command()(command)
    app.add_typer(stack.app, name="stack")
    app.command("demo")(demo.demo)


_register()


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
