"""What every command shares: options declared once, the database, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from statusctl.domain.display import plural  # noqa: F401  (re-exported: the commands use it from here)

if TYPE_CHECKING:
    from rich.console import Console

    from statusctl.storage.backends import Target
    from statusctl.storage.db import Database

def _argument_metavar(self: typer.core.TyperArgument, ctx: Any, *, usage: bool = False) -> str:
    """An argument as usage lines and help show it, as Click writes it: `EVENT ORDER`, `[IDS]...`
    (Typer 0.28 writes `{event} {order}`, which reads like a placeholder to fill in with braces)."""
    var = self.metavar or (self.name or "").upper()
    if usage and not self.required and not var.startswith("["):
        var = f"[{var}]"
    return var + ("..." if self.nargs != 1 else "")


typer.core.TyperArgument.make_metavar = _argument_metavar  # type: ignore[method-assign]

# Typer 0.28's own Click writes an option's value as its type's name in brackets (`--store <str>`,
# `--limit <int range>`); help shows Click's names instead.
_CLICK_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "int range": "INTEGER", "float": "FLOAT",
                     "float range": "FLOAT", "boolean": "BOOLEAN", "filename": "FILENAME"}


def _option_metavar(self: typer.core.TyperOption, ctx: Any) -> str:
    """An option's value as help shows it: its metavar, else Click's name of its type (`TEXT`, `INTEGER`)."""
    if self.metavar is not None:
        return self.metavar
    var = self.type.get_metavar(param=self, ctx=ctx) or _CLICK_TYPE_NAMES.get(
        self.type.name, self.type.name.upper().replace(" ", "_"))
    return var + ("..." if self.nargs != 1 else "")


typer.core.TyperOption.make_metavar = _option_metavar  # type: ignore[method-assign]


def sub_app(help: str) -> typer.Typer:
    """A noun's Typer sub-app, configured once for all of them."""
    return typer.Typer(
        help=help,
        rich_markup_mode=None,
        add_completion=False,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
StoreOpt = Annotated[str | None, typer.Option("--store", metavar="STORE", help="Only this store.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
LimitOpt = Annotated[int, typer.Option(
    "--limit", min=0, metavar="N", help="Show at most N rows (default 1000; 0: all); --json prints the same N "
    "as a plain list, a text listing says when rows were left out.")]

_state: dict[str, Any] = {"db_path": None}


def set_db_option(value: str | Path | None) -> None:
    _state["db_path"] = value


def db_target() -> Target:
    """The database this command uses (`--db`, STATUSCTL_DB, the data directory): a SQLite path or a
    PostgreSQL URL; a URL of another scheme is refused."""
    from statusctl.core.paths import db_target as resolve

    return resolve(_state["db_path"])


def db_path() -> Path:
    """The SQLite file this command works on; a PostgreSQL URL is refused with a sentence."""
    from statusctl.core.paths import db_path as resolve

    return resolve(_state["db_path"])


def open_db(*, create: bool = False) -> Database:
    """Open (migrate, load defaults on first use) this command's database.

    Only `init`, `setup` and `demo` pass `create`: for every other command a
    missing database is an error naming `statusctl init`, never a new empty
    one — a mistyped STATUSCTL_DB must not make a cron drain or a monitoring
    check pass.
    """
    from statusctl.core.init import ensure_initialized
    from statusctl.storage.backends import open_database

    db = open_database(db_target(), create=create)
    ensure_initialized(db)
    return db


def print_json(data: Any) -> None:
    """One JSON document: the exact data; characters that could drive a terminal are written as \\u escapes."""
    from statusctl.domain.display import json_safe

    sys.stdout.write(json_safe(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n")


def console(stderr: bool = False) -> Console:
    """The Rich console every command prints through: every string it renders goes through `printable`."""
    # No markup, no emoji codes: cells and lines hold names, answers and notes from files and
    # carts, where "[/]" raised MarkupError, "[red]" restyled the output and ":x:" became an emoji.
    return _safe_console_class()(stderr=stderr, highlight=False, markup=False, emoji=False)


@functools.cache
def _safe_console_class() -> type[Console]:
    from rich.console import Console
    from rich.text import Text

    from statusctl.domain.display import printable

    class SafeConsole(Console):
        """Strings (lines, table cells, titles) are escaped before Rich measures and renders them."""

        def render_str(self, text: str, **kwargs: Any) -> Text:
            return super().render_str(printable(text), **kwargs)

        def on_broken_pipe(self) -> None:
            closed_pipe()

    return SafeConsole


def closed_pipe() -> NoReturn:
    """stdout's reader went away (`| head -1`): stop quietly, exit 141 as a tool ended by SIGPIPE does."""
    import contextlib
    import io
    import os

    # What is still buffered goes nowhere, instead of failing again at exit.
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    from statusctl.domain.errors import ExitCode

    raise SystemExit(ExitCode.CLOSED_PIPE)


def table(title: str | None, columns: list[str], rows: list[list[Any]], *, optional: Sequence[str] = ()) -> None:
    """Print a table that fits the terminal (see `statusctl.cli.tables`); None shows as an en dash.

    `optional`: columns that may be left out, first ones first, when the table is too wide.
    """
    from statusctl.cli.tables import render_table

    render_table(title, columns, rows, optional=optional)


def notes(lines: Iterable[str]) -> None:
    """Lines under a table: free text wrapped at spaces to the terminal, no word cut in two."""
    from statusctl.cli.tables import wrap, write_lines
    from statusctl.domain.display import printable

    width = console().width
    write_lines(part for line in lines for part in wrap(printable(line), width, rest="    "))


def say(message: str) -> None:
    """A line for people, on stdout: escaped, wrapped at spaces, a long word (a URL) never cut."""
    notes([message])


def confirm(question: str, yes: bool, what: str) -> None:
    """Go on when `--yes` was given or the operator agrees; refuse without a terminal instead of hanging."""
    if yes:
        return
    if not sys.stdin.isatty():
        from statusctl.domain.errors import InputError

        raise InputError(f"Refusing to {what} without a terminal to confirm on; add --yes.")
    if not typer.confirm(question, default=False):
        warn("Nothing was changed.")
        raise typer.Exit(1)


def warn(message: str) -> None:
    """A line (or lines) for people on stderr, escaped like everything shown (newlines kept)."""
    from statusctl.domain.display import printable

    sys.stderr.write(printable(message.rstrip(), lines=True) + "\n")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def when(epoch: float | None, *, compact: bool = False) -> str:
    """Local time of an epoch; `compact` leaves out the year (for narrow tables)."""
    if epoch is None:
        return "–"
    import time

    try:
        return time.strftime("%m-%d %H:%M:%S" if compact else "%Y-%m-%d %H:%M:%S", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):  # a time past what time_t (or a year) holds
        return "far in the future" if epoch > 0 else "long ago"
