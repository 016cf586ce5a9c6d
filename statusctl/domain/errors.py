"""The errors statusctl raises on purpose, and the exit code each one maps to.

StatusctlError            base: the user sees its message on stderr, exit 1
├── InputError            a bad file, row, field or option value (names where)
├── NotFound              an unknown store, order, label, event or record
├── ConfigError           a system parameter or store setting is missing or wrong
├── StatusUpdatesOff      UseStatusUpdates is false for a command that fires events: exit 4
└── DatabaseError         the database cannot be opened, written or is corrupt
    ├── DiskFull          a write failed for lack of space
    └── DatabaseReplaced  the database file was deleted or replaced while open
"""

from __future__ import annotations

import enum

from statusctl.domain.display import printable


class ExitCode(enum.IntEnum):
    """Exit codes of DESIGN.md §3, named once."""

    OK = 0
    ERROR = 1
    USAGE = 2
    DELIVERY = 3
    UPDATES_OFF = 4
    HANGUP = 129  # 128 + SIGHUP: the terminal closed (demo)
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C, a cancelled setup, a `stack run` cut short by SIGINT
    CLOSED_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`| head -1`)
    TERMINATED = 143  # 128 + SIGTERM: a `stack run` (or demo) cut short by SIGTERM

    @classmethod
    def for_signal(cls, signum: int) -> int:
        """The exit code of a run cut short by signal `signum`, as a shell reports it: 128 + signum."""
        try:
            return cls(128 + signum)
        except ValueError:  # a signal not named above
            return 128 + signum


class StatusctlError(Exception):
    """Something the user can fix; the message is one sentence for stderr."""

    exit_code: ExitCode = ExitCode.ERROR


class InputError(StatusctlError):
    """Bad input: the message names the file, line and field (or the option)."""


class NotFound(StatusctlError):
    """A name or id that does not exist."""


class ConfigError(StatusctlError):
    """A system parameter, store setting or secret is missing or invalid."""


class StatusUpdatesOff(StatusctlError):
    """UseStatusUpdates is false, so no status event may fire."""

    exit_code = ExitCode.UPDATES_OFF


class DatabaseError(StatusctlError):
    """The database file cannot be opened, locked past the timeout, read-only or corrupt."""


class DiskFull(DatabaseError):
    """A write failed because the disk holding the database is full."""


class DatabaseReplaced(DatabaseError):
    """The database file was deleted, moved or replaced by another file while it was open."""


def shown(value: object, limit: int = 60) -> str:
    """`value` quoted for a message, escaped and cut after `limit` characters: an error stays one readable line.

    Quoted as Python would (backslashes doubled, so the escapes `printable` writes
    cannot be mistaken for text), with control and bidi characters escaped by `printable`;
    but a quote inside is never backslashed: `'Customer's "pickup"'` (the outer quotes
    are the first and last character).
    """
    text = str(value)
    cut = text[:limit]
    quote = '"' if "'" in cut and '"' not in cut else "'"
    body = printable(cut.replace("\\", "\\\\"))
    return f"{quote}{body}{quote}" + ("…" if len(text) > limit else "")
