"""PostgreSQL's faults as one sentence each, naming the database by its masked URL.

A connection that fails carries no SQLSTATE (libpq reports it as text), so connecting is
judged by the server's words; a statement's fault by its SQLSTATE. Text taken from an
error is shown only with the URL's credentials (and PGPASSWORD) replaced by the mask.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote

from statusctl.domain.errors import DatabaseError, DiskFull
from statusctl.domain.urls import MASK, split_userinfo

NEEDS_PSYCOPG = ("PostgreSQL needs the psycopg package: install statusctl with its postgres extra (pip install '.[postgres]' "
                 "in the statusctl checkout), or pip install 'psycopg[binary]'.")
READ_ONLY = "25006"  # read_only_sql_transaction: a standby, or a database set read-only
RETRYABLE = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_LIBPQ_PREFIX = re.compile(r"^(?:connection (?:failed|is bad): )?(?:connection to server (?:at|on) .*? failed: )?(?:FATAL: +)?")
_MISSING_DB = re.compile(r'database "([^"]*)" does not exist')
_DOWN = ("connection refused", "could not connect", "timeout expired", "could not translate host name",
         "no such file or directory", "network is unreachable", "no route to host", "server closed the connection",
         "the database system is starting up", "the database system is shutting down", "connection timed out",
         "name or service not known")
_AUTH = ("password authentication failed", "no password supplied", "authentication failed", "pg_hba.conf",
         "peer authentication", "ident authentication", "role ")


def passwords(url: str) -> list[str]:
    """The passwords `url` carries (in its userinfo or a `password=` parameter), and $PGPASSWORD.

    Unlike a store URL's, a lone user name here is a role, not a token: it is no secret.
    """
    _, userinfo, rest = split_userinfo(url)
    _, colon, password = (userinfo or "").partition(":")
    query = rest.partition("#")[0].partition("?")[2]
    found = [unquote(password)] if colon else []
    found += [v for k, v in parse_qsl(query) if k == "password"]
    return [v for v in (*found, os.environ.get("PGPASSWORD", "")) if v]


def scrub(text: str, url: str) -> str:
    """`text` with every password of `url` (and $PGPASSWORD) replaced by the mask, cut to one line."""
    secrets = passwords(url)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return " ".join(text.split())


def _detail(exc: BaseException, url: str) -> str:
    """The server's own words, first line only, without libpq's `connection to server at … failed:` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _LIBPQ_PREFIX.sub("", text)
    return scrub(text.rstrip("."), url)


def connect_error(exc: BaseException, name: str, url: str) -> DatabaseError:
    """Why a connection could not be opened: server down, authentication, no such database, no free slot."""
    text = str(exc).lower()
    missing = _MISSING_DB.search(str(exc))
    if missing:
        db = scrub(missing.group(1), url)
        return DatabaseError(
            f"The PostgreSQL database {name} does not exist; create it first (`createdb {db}` on the server, "
            "or ask your DBA): `statusctl init` creates statusctl's tables, not the database.")
    if "too many connections" in text or "remaining connection slots" in text:
        return DatabaseError(f"The PostgreSQL server of {name} accepts no more connections (too many connections); "
                             "close some, or raise max_connections or the role's connection limit, and try again.")
    if any(words in text for words in _AUTH):
        return DatabaseError(
            f"The PostgreSQL server refused to let statusctl log in to {name} (authentication failed: "
            f"{_detail(exc, url)}); check the user and password in the URL, PGPASSWORD or ~/.pgpass.")
    if any(words in text for words in _DOWN):
        return DatabaseError(f"Cannot reach the PostgreSQL server of {name} ({_detail(exc, url)}): check that it is "
                             "running, and the host and port in the URL.")
    return DatabaseError(f"Cannot connect to the PostgreSQL database {name}: {_detail(exc, url)}.")


def statement_error(exc: BaseException, name: str, url: str, *, lock_timeout: float, statement_timeout: float,
                    stopping: bool, lost: bool, committing: bool = False, idle_timeout: float = 0) -> DatabaseError:
    """The sentence for a statement's (or a COMMIT's) environmental fault, by SQLSTATE."""
    state = getattr(exc, "sqlstate", None) or ""
    if state == "25P03" or "idle-in-transaction timeout" in str(exc):
        return DatabaseError(f"The PostgreSQL server of {name} ended a transaction of statusctl's that stayed idle "
                             f"for more than {idle_timeout:g} s (idle_in_transaction_session_timeout), so the change "
                             "was rolled back; try again.")
    if state == "53100":
        return DiskFull(f"The disk of the PostgreSQL server holding {name} is full, so statusctl cannot write its "
                        "database (the last change was not saved); free some space on the server and try again.")
    if state == READ_ONLY:
        return DatabaseError(f"The PostgreSQL database {name} is read-only (a standby, or a database or transaction "
                             "set read-only), and statusctl must write it; give the URL of the primary.")
    if state == "42501":
        return DatabaseError(f"The PostgreSQL role of {name} may not use statusctl's tables ({_detail(exc, url)}); "
                             "ask the DBA to grant it their use, or connect as their owner.")
    if state in ("55P03", "57014") and stopping:
        return DatabaseError(f"The database {name} is locked by another transaction, and statusctl stopped waiting "
                             "for it because it is stopping.")
    if state == "55P03":
        return DatabaseError(f"The database {name} stayed locked by another transaction for more than "
                             f"{lock_timeout:g} s; try again when it is free.")
    if state == "57014":
        return DatabaseError(f"A statement on the database {name} ran for more than {statement_timeout:g} s and was "
                             "cancelled (statement_timeout); try again when the server is less busy.")
    if state in RETRYABLE:
        return DatabaseError(f"A transaction on the database {name} conflicted with another one (a deadlock or "
                             "serialization failure) and was rolled back; try again.")
    if state == "53300" or state.startswith("53"):
        return DatabaseError(f"The PostgreSQL server of {name} ran out of resources ({_detail(exc, url)}); "
                             "try again later.")
    if lost or state.startswith("08") or state.startswith("57P"):
        if committing:
            return DatabaseError(f"The connection to the PostgreSQL database {name} was lost while committing, so "
                                 "statusctl cannot tell whether the last change was saved; check, and try again.")
        return DatabaseError(f"The connection to the PostgreSQL database {name} was lost during a transaction (the "
                             "server restarted or closed it), so the change was rolled back; try again.")
    return DatabaseError(f"Database error on {name}: {_detail(exc, url)}.")


def retries_exhausted(name: str, tries: int) -> DatabaseError:
    return DatabaseError(f"A transaction on the database {name} kept conflicting with others (deadlocks or "
                         f"serialization failures) and was given up after {tries} tries; try again.")
