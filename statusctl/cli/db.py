"""`statusctl db`: the database as a whole; `db copy` moves a shop from one SQLite file to PostgreSQL."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusctl.cli.common import JsonOpt, db_path, print_json, say, sub_app, table
from statusctl.storage.copy import Progress

if TYPE_CHECKING:
    from statusctl.storage.copy import CopyReport

app = sub_app("The database as a whole: copy it into PostgreSQL to share one stack between machines.")

ToOpt = Annotated[str, typer.Option("--to", metavar="URL", help=(
    "The PostgreSQL database to copy into, postgresql://user@host:port/dbname: a new empty one (createdb), or "
    "one where only `statusctl init` ran. A password in it is never shown."))]


@app.callback()
def _group() -> None:
    """The database as a whole (a group of one command for now: Typer would fold a lone command into it)."""


class _Bar(Progress):
    """A Rich progress bar over every row to copy, on stdout while it is a terminal (gone when done)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        from statusctl.cli.common import console

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                           TimeRemainingColumn(), console=console(), transient=True)
        self._task: Any = None

    def begin(self, counts: dict[str, int]) -> None:
        self._task = self._bar.add_task("Copying rows", total=sum(counts.values()))
        self._bar.start()

    def advance(self, table: str, rows: int) -> None:
        self._bar.update(self._task, advance=rows, description=f"Copying {table}")

    def stop(self) -> None:
        self._bar.stop()


@app.command("copy")
def copy_command(to: ToOpt, json: JsonOpt = False) -> None:
    """Copy this whole SQLite database (stack, history, orders, settings) into an empty PostgreSQL database.

    One transaction: on any failure the target is left as it was. Refused while a controller runs on the
    source. Stop every workstation, controller and the OSS first; then point them all at the URL.
    """
    from statusctl.domain.errors import InputError, shown
    from statusctl.domain.urls import db_url_to_share, shown_db_value
    from statusctl.storage.backends import is_postgres, open_database
    from statusctl.storage.copy import copy_database
    from statusctl.storage.db import Database

    if not is_postgres(to):
        raise InputError(f"--to {shown(shown_db_value(to))} is not a PostgreSQL URL; give one like "
                         "postgresql://user@host:5432/dbname.")
    source = Database.open(db_path(), create=False, migrate=False)  # the copy never writes its source
    try:
        target: Any = open_database(to, create=True, migrate=False)  # a PostgresDatabase: `to` is a URL
        try:
            bar = _Bar() if sys.stdout.isatty() and not json else None
            try:
                report = copy_database(source, target, progress=bar)
            finally:
                if bar is not None:
                    bar.stop()
        finally:
            target.close()
    finally:
        source.close()
    _show(report, json, *db_url_to_share(to))


def _show(report: CopyReport, json: bool, shared: str, left_out: list[str]) -> None:
    """What was copied; `shared` is the URL to set everywhere, `left_out` the secrets taken out of it."""
    if json:
        print_json({"source": report.source, "target": report.target, "created_schema": report.created_schema,
                    "tables": report.tables, "rows": sum(report.tables.values()), "next_ids": report.next_ids,
                    "seconds": round(report.seconds, 3)})
        return
    say(f"Copied {report.source} to {report.target}:")
    table(None, ["table", "rows"], [[name, rows] for name, rows in report.tables.items()])
    made = "its tables were created" if report.created_schema else "its defaults were replaced"
    say(f"{sum(report.tables.values())} rows in {report.seconds:.1f} s, in one transaction ({made}; the "
        "controllers table is not copied: controllers register themselves).")
    others = [name for name in left_out if name != "password"]
    give = (f"; {', '.join(others)} {'was' if len(others) == 1 else 'were'} left out of it too: give each "
            "machine its own the same way, or through libpq's environment" if others else "")
    say(f"New records start at seq {report.next_ids['stack.seq']}. Set STATUSCTL_DB={shared} "
        f"on every workstation, controller and the OSS, with the password in each one's ~/.pgpass{give} "
        "(docs/postgres.md).")
