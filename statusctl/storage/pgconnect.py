"""Opening a PostgreSQL connection: libpq gets the URL unchanged, statusctl shows it masked.

Handing the URL to libpq as given is what makes `postgres://`, `?host=/socket/dir`, the
PG* variables and ~/.pgpass work as they do for psql; statusctl adds only what the URL
and the environment leave unsaid (a connect timeout, the application name) and its
session settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from statusctl.domain.errors import DatabaseError
from statusctl.domain.urls import db_url_problem
from statusctl.domain.urls import mask_db_url as masked
from statusctl.storage import pgerrors
from statusctl.storage.pgsql import Row, register_types, row_factory

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10  # unless the URL or PGCONNECT_TIMEOUT says otherwise
APPLICATION_NAME = "statusctl"


def load_psycopg() -> Any:
    """psycopg, imported on first use (a SQLite command never pays for it), or the sentence to install it."""
    try:
        import psycopg
    except ImportError:
        raise DatabaseError(pgerrors.NEEDS_PSYCOPG) from None
    return psycopg


def environmental(exc: BaseException) -> bool:
    """A fault of the server, the network or another session rather than of the statement itself."""
    psycopg = load_psycopg()
    return isinstance(exc, (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction,
                            psycopg.errors.IdleInTransactionSessionTimeout, psycopg.errors.InsufficientPrivilege)) or (
        isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc).lower())


def _not_an_end_on_a_lost_connection(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("error ignored terminating")


@contextlib.contextmanager
def quiet_end() -> Iterator[None]:
    """A COPY or a pipeline cut short (the server gone) is reported once, as statusctl's sentence:
    psycopg's warning that it could not end it on the lost connection is dropped (it would print
    on stderr beside the sentence)."""
    logger = logging.getLogger("psycopg")
    logger.addFilter(_not_an_end_on_a_lost_connection)
    try:
        yield
    finally:
        logger.removeFilter(_not_an_end_on_a_lost_connection)


def ms(seconds: float) -> int:
    """Seconds as a PostgreSQL timeout in ms; never 0, which would mean no limit at all."""
    return max(1, round(min(seconds, 86400) * 1000))


def connect(url: str, lock_timeout: float, statement_timeout: float, idle_timeout: float) -> psycopg.Connection[Row]:
    """A connection in autocommit mode (tx() says BEGIN itself) with statusctl's session settings."""
    problem = db_url_problem(url)
    if problem:
        raise DatabaseError(problem)
    scheme, sep, rest = url.partition("://")
    url = scheme.lower() + sep + rest  # libpq knows the scheme in lower case only (POSTGRESQL:// is valid too)
    psycopg = load_psycopg()
    name = masked(url)
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise DatabaseError(f"{name} is not a valid PostgreSQL URL; give one like "
                            "postgresql://user@host:5432/dbname (check --db / STATUSCTL_DB).") from None
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in params and "PGAPPNAME" not in os.environ:
        extra["application_name"] = APPLICATION_NAME
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=row_factory, **extra)
    except psycopg.Error as exc:
        raise pgerrors.connect_error(exc, name, url) from None
    try:
        register_types(conn)
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false), "
            "set_config('idle_in_transaction_session_timeout', %s, false), set_config('TimeZone', 'UTC', false)",
            (str(ms(lock_timeout)), str(ms(statement_timeout)), str(ms(idle_timeout))))
    except psycopg.Error as exc:
        conn.close()
        raise pgerrors.statement_error(exc, name, url, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                                       stopping=False, lost=True) from None
    return conn  # type: ignore[no-any-return]
