"""The root command: global --db, the sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import sqlite3
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from statusctl.cli import common
from statusctl.domain.errors import DatabaseError, ExitCode, StatusctlError

# Sub-apps are imported and built only when invoked (or listed by --help):
# building every command's parameters up front costs ~30 ms on each start.
_LAZY: dict[str, tuple[str, str]] = {
    "config": ("statusctl.cli.config", "app"),
    "labels": ("statusctl.cli.labels", "app"),
    "events": ("statusctl.cli.labels", "events_app"),
    "carts": ("statusctl.cli.stores", "carts"),
    "stores": ("statusctl.cli.stores", "app"),
    "oss": ("statusctl.cli.stores", "oss_app"),
    "orders": ("statusctl.cli.orders", "app"),
    "fire": ("statusctl.cli.changes", "fire"),
    "ship": ("statusctl.cli.changes", "ship"),
    "cancel": ("statusctl.cli.changes", "cancel"),
    "apply": ("statusctl.cli.changes", "apply"),
    "stack": ("statusctl.cli.stack", "app"),
    "demo": ("statusctl.cli.demo", "demo"),
    "setup": ("statusctl.cli.setup", "setup"),
    "db": ("statusctl.cli.db", "app"),
}


def _lazy_command(name: str) -> Any:
    import importlib

    module, attr = _LAZY[name]
    target = getattr(importlib.import_module(module), attr)
    if not isinstance(target, typer.Typer):
        single = common.sub_app("")
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


def _listed_command(name: str) -> Any:
    """A stand-in that carries only a lazy sub-command's help text, for the root's --help."""
    import importlib
    import inspect

    from typer.core import TyperCommand

    module, attr = _LAZY[name]
    target = getattr(importlib.import_module(module), attr)
    text = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
    if not isinstance(text, str):  # no help of its own: let Typer work it out
        return _lazy_command(name)
    return TyperCommand(name, help=text)


class _Root(TyperGroup):
    """Lazy sub-commands, and statusctl's own errors as one sentence on stderr with the right exit code."""

    _listing = False  # True while --help lists the sub-commands

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *_LAZY]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _LAZY:
            command = _listed_command(cmd_name) if self._listing else _lazy_command(cmd_name)
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # The list shows one line of help per sub-command: building every lazy one's
        # parameters just for that cost ~20 ms on each `statusctl --help`.
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StatusctlError as exc:
            _error(f"Error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except sqlite3.Error as exc:
            _error(f"Error: database problem: {exc}.")
            raise typer.Exit(DatabaseError.exit_code) from None
        except BrokenPipeError:  # `statusctl stack history | head -1`: the reader has all it wanted
            common.closed_pipe()
        except MemoryError:
            # An input within the file limits can still be more than a small machine holds: the
            # transaction was rolled back on the way out, so nothing was written.
            _error("Error: statusctl ran out of memory; nothing was written. Split the input into smaller "
                   "files, or run it where more memory is free.")
            raise typer.Exit(ExitCode.ERROR) from None
        except OSError as exc:
            if exc.errno == 28:
                common.warn("Error: the disk is full; nothing more was written.")
            else:
                _error(f"Error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ") + ".")
            raise typer.Exit(ExitCode.ERROR) from None
        except UnicodeEncodeError as exc:
            # An argument in another encoding reaches Python as surrogate escapes, which
            # SQLite cannot store and stdout cannot print (a transaction it meets rolls back).
            text = exc.object if isinstance(exc.object, str) else ""
            start = max(0, exc.start - 20)
            shown = text[start : exc.end + 20]
            common.warn(f"Error: the text {shown!r} is not valid UTF-8; give names and values in UTF-8.")
            raise typer.Exit(ExitCode.ERROR) from None
        except Exception as exc:  # last: every clause above goes first
            # psycopg's errors, without importing psycopg here (a SQLite command must not pay for it):
            # its statement errors hold no connection string, so no password; the first line says it.
            if not type(exc).__module__.startswith("psycopg"):
                raise
            first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else repr(exc)
            _error(f"Error: database problem: {first}.")
            raise typer.Exit(DatabaseError.exit_code) from None


def _error(sentence: str) -> None:
    """An error as one line on stderr: a newline or escape in what it quotes is shown escaped."""
    from statusctl.domain.display import printable

    common.warn(printable(sentence))


def _version(value: bool) -> None:
    if value:
        from statusctl import __version__

        print(f"statusctl {__version__}")
        raise typer.Exit()


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
        str | None, typer.Option("--db", metavar="PATH|URL", help=(
            "Database: a SQLite file, or a PostgreSQL URL (postgresql://user@host:port/dbname; libpq's "
            "?host=, PG* variables and ~/.pgpass apply) shared by several machines. Default: $STATUSCTL_DB, "
            "else a file in the user data directory. It must exist (`statusctl init` creates a file, or the "
            "schema in an existing PostgreSQL database). Other URLs, a file: URI and an empty value are refused."))
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """statusctl: status labels, status events and the stack that delivers them."""
    common.set_db_option(db)


@app.command()
def init() -> None:
    """Create or migrate the database and load the defaults (idempotent); prints its path or masked URL."""
    from statusctl.core.init import initialize

    db = common.open_db(create=True)
    initialize(db)
    from statusctl.domain.display import printable

    print(printable(db.name))


def run() -> None:
    """Console-script entry point."""
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # a closed pipe shows here when the output fitted in the buffer
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        common.closed_pipe()
