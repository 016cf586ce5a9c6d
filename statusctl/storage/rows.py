"""Reads that work on a Database (outside a transaction) and on a transaction's connection alike,
and the arrays PostgreSQL takes a batch of rows as."""

from __future__ import annotations

from typing import Any

from statusctl.storage import dialect


def rows(src: Any, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
    """All rows of a read: through `Database.query` (faults become one sentence) or a connection's `execute`."""
    query = getattr(src, "query", None)
    return list(query(sql, params)) if query is not None else src.execute(sql, params).fetchall()


def one(src: Any, sql: str, params: tuple[object, ...] = ()) -> Any:
    """The first row of a read, or None."""
    found = rows(src, sql, params)
    return found[0] if found else None


def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column: the arrays `unnest()` turns back into rows on PostgreSQL."""
    return [list(column) for column in zip(*rows, strict=True)]


def unnest(*types: str) -> str:
    """`unnest(CAST(? AS t1[]), ...)`: a batch as a few array parameters. On PostgreSQL a statement
    with thousands of placeholders costs more to parse (on both sides) than the rows cost to write,
    and a statement per row a round of parse and plan on the server even when psycopg pipelines them."""
    return "unnest(" + ", ".join(f"CAST(? AS {t}[])" for t in types) + ")"


def insert_returning(conn: Any, into: str, rows: list[tuple[Any, ...]], types: tuple[str, ...], returning: str, *,
                     chunk: int) -> list[Any]:
    """What `returning` gives back for `into` (`INSERT INTO t (columns) `) of `rows`, `chunk` rows per statement,
    the statements in the rows' order: a VALUES list on SQLite, arrays (`unnest`, of `types`) on PostgreSQL, fed
    in order WITH ORDINALITY so that the rows get their identities in the order given."""
    out: list[Any] = []
    pg = dialect.of(conn) == "postgresql"
    names = ", ".join(f"c{n}" for n in range(len(types)))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        if pg:
            sql = (f"{into}SELECT {names} FROM {unnest(*types)} WITH ORDINALITY AS v({names}, n) ORDER BY n "
                   f"{returning}")
            out += conn.execute(sql, columns(part)).fetchall()
        else:
            marks = "(" + ", ".join("?" * len(types)) + ")"
            out += conn.execute(f"{into}VALUES {','.join([marks] * len(part))} {returning}",
                                [value for row in part for value in row]).fetchall()
    return out
