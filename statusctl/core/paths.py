"""The one place that decides where statusctl keeps its files.

`--db` and `STATUSCTL_DB` name a SQLite file or a PostgreSQL database
(`postgresql://user@host:port/dbname` or `postgres://…`, with libpq's query
parameters such as `?host=/socket/dir`; the `PG*` variables and `~/.pgpass` fill
in what the URL leaves out). A value that looks like a URL of any other scheme is
an error, never a file name; so are a `scheme:` prefix without `//`
(`file:/tmp/x.db`; one letter is a Windows drive) and an empty value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from statusctl.domain.display import printable
from statusctl.domain.errors import ConfigError, shown
from statusctl.domain.urls import db_url_problem, mask_url
from statusctl.storage.backends import POSTGRES_SCHEMES, Target

ENV_DB = "STATUSCTL_DB"
DB_FILENAME = "statusctl.db"
OSS_DB_FILENAME = "statusctl-oss.db"

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# `file:/tmp/x.db`, `sqlite:x.db`: a URI scheme without `//` (one letter is a Windows drive, `C:\…`).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_CONNINFO = re.compile(r"(?:^|\s)(?:host|hostaddr|port|dbname|user|password|passfile|service|sslmode)\s*=", re.IGNORECASE)


def data_dir() -> Path:
    """The user data directory (platformdirs), not created here."""
    import platformdirs

    return Path(platformdirs.user_data_dir("statusctl", appauthor=False))


def url_scheme(value: str) -> str | None:
    """The scheme of a value written like a URL (`scheme://…`), lower case; None for a file path."""
    match = _URL.match(value)
    return match.group(1).lower() if match else None


def database_url_problem(value: str, where: str) -> str | None:
    """Why the URL `value` (from `where`) cannot be used as the database; None if it is a file path."""
    scheme = url_scheme(value)
    if scheme is None:
        return None
    text = shown(mask_url(value))
    if scheme in POSTGRES_SCHEMES:
        problem = db_url_problem(value)
        return f"{where} {printable(problem)}" if problem else None
    return (f"{where} {text} is a {scheme}:// URL, not a database; give the path of a SQLite file or a "
            "postgresql:// URL.")


def db_target(explicit: str | os.PathLike[str] | None = None) -> Target:
    """`--db`, else `STATUSCTL_DB`, else statusctl.db in the user data directory: a Path for
    SQLite, the URL string as given for PostgreSQL.

    ConfigError when the value is empty or a URL of another scheme (see `database_url_problem`).
    """
    if explicit is not None:
        value, where = os.fspath(explicit), "--db"
    elif ENV_DB in os.environ:
        value, where = os.environ[ENV_DB], ENV_DB
    else:
        return data_dir() / DB_FILENAME
    if not value.strip():
        unset = "leave out --db" if where == "--db" else f"unset {ENV_DB}"
        raise ConfigError(f"{where} is empty; give the path of the database file, or {unset} to use the "
                          f"default ({data_dir() / DB_FILENAME}).")
    problem = database_url_problem(value, where)
    if problem:
        raise ConfigError(problem)
    if url_scheme(value) in POSTGRES_SCHEMES:
        return value
    problem = _conninfo_problem(value, where) or _uri_problem(value, where)
    if problem:
        raise ConfigError(problem)
    return Path(value).expanduser()


def _uri_problem(value: str, where: str) -> str | None:
    """Why a value starting `scheme:` without `//` (`file:/tmp/x.db`) is not taken as a file name."""
    prefix = _SCHEME.match(value)
    if prefix is None:
        return None
    # `postgresql:user:password@host` (the // forgotten) would show its password: only the scheme is quoted then.
    text = shown(value) if "@" not in value else shown(f"{prefix.group(1)}:…")
    return (f"{where} {text} starts with {prefix.group(1)}:, which reads as a URI, not a database file; "
            "give the path of a SQLite file (write ./NAME for a file whose name has a colon), or a "
            "postgresql:// URL.")


def _conninfo_problem(value: str, where: str) -> str | None:
    """A libpq keyword string (`host=… dbname=… password=…`) is no file name, and is never shown: it may hold a password."""
    if not _CONNINFO.search(value):
        return None
    return (f"{where} looks like a libpq connection string (key=value pairs; not shown, as it may hold a "
            "password): give it as a URL, postgresql://user@host:5432/dbname, with the password in ~/.pgpass.")


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Like `db_target`, for the commands that work on a SQLite file only: a PostgreSQL URL is refused."""
    target = db_target(explicit)
    if isinstance(target, str):
        raise ConfigError(f"This command works on a SQLite database file, and {shown(mask_url(target))} "
                          "is a PostgreSQL URL.")
    return target


def oss_db_path(main_db: Path) -> Path:
    """The Order Status System's own database, beside the main one."""
    return main_db.with_name(OSS_DB_FILENAME)
