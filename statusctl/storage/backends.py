"""Opening the database a command names: a file path is SQLite, a postgresql:// URL is PostgreSQL.

psycopg is imported only here and only for a PostgreSQL URL, so `statusctl --help`
and every SQLite command start without it (tests/test_startup_imports.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from statusctl.storage.db import Database

# What --db / STATUSCTL_DB resolve to: a SQLite file, or a PostgreSQL URL kept as the string given.
Target = Path | str

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres(target: Target) -> bool:
    """Is this target a PostgreSQL URL (postgresql:// or postgres://, any case)?"""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in POSTGRES_SCHEMES and "://" in target


def open_database(target: Target, *, create: bool = False, migrate: bool = True) -> Database:
    """Open (and migrate) the database at `target`; with `create`, create a missing SQLite file or schema.

    A PostgreSQL database itself is never created here (that is the DBA's
    `createdb`); `create` lets `statusctl init` lay out the schema in it.
    """
    if is_postgres(target):
        from statusctl.storage.postgres import PostgresDatabase

        # The same interface as the SQLite class, duck-typed (statusctl.storage.postgres).
        return cast("Database", PostgresDatabase.open(str(target), create=create, migrate=migrate))
    from statusctl.storage.db import Database

    return Database.open(Path(target), create=create, migrate=migrate)


def display_name(target: Target) -> str:
    """How messages name the target: the path, or the URL with its password masked."""
    if is_postgres(target):
        from statusctl.domain.urls import mask_db_url

        return mask_db_url(str(target))
    return str(target)
