"""SQLite-style SQL run on psycopg: `?` and `:name` placeholders, and rows read like sqlite3.Row.

The storage code writes its statements once, with SQLite's placeholders, and reads rows as
`row[0]` or `row["name"]`; this module lets the same code run on PostgreSQL where its SQL is
portable. A statement is translated once (cached): placeholders become psycopg's `%s` and
`%(name)s`, a literal `%` becomes `%%`, and nothing inside a quoted literal, a quoted name,
a comment or a dollar-quoted body is touched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(sql: str, i: int) -> int:
    """The index after the quoted literal, name, comment or dollar-quoted body starting at `i` (else `i`)."""
    c = sql[i]
    if c in "'\"":
        backslashes = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
        j = i + 1
        while j < len(sql):
            if backslashes and sql[j] == "\\":
                j += 2
                continue
            if sql[j] == c:
                if sql[j + 1:j + 2] == c:  # a doubled quote stays inside
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(sql)
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    if c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        tag = _DOLLAR_TAG.match(sql, i)
        if tag:
            end = sql.find(tag.group(), tag.end())
            return len(sql) if end < 0 else end + len(tag.group())
    return i


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """`sql` with SQLite's `?` / `:name` placeholders as psycopg's `%s` / `%(name)s`, and `%` as `%%`."""
    out: list[str] = []
    i = 0
    while i < len(sql):
        end = _skip_quoted(sql, i)
        if end > i:
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        c = sql[i]
        if c == "?":
            out.append("%s")
        elif c == "%":
            out.append("%%")
        elif c == ":" and sql[i + 1:i + 2] == ":":  # a PostgreSQL cast, `x::text`
            out.append("::")
            i += 2
            continue
        elif c == ":" and (name := _NAME.match(sql, i + 1)):
            out.append(f"%({name.group()})s")
            i = name.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


class Row(tuple[Any, ...]):
    """A result row: a tuple (`row[0]`, unpacking, equality) that also reads `row["name"]` and `keys()`.

    Like sqlite3.Row, a name is matched without regard to case. Each set of column names
    gets its own subclass (cached), so a row costs no more than its tuple.
    """

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                index = self._index[key]
            except KeyError:
                lowered = {n.lower(): i for n, i in self._index.items()}
                if key.lower() not in lowered:
                    raise IndexError(f"No item with that key: {key!r}") from None
                index = lowered[key.lower()]
            return tuple.__getitem__(self, index)
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # a repeated name reads its first column, as sqlite3.Row does
    return type("Row", (Row,), {"__slots__": (), "_names": names, "_index": index})


def row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    """psycopg's row factory: rows of a Row subclass named after the cursor's columns."""
    description = cursor.description
    cls = _row_class(tuple(c.name for c in description) if description else ())
    return lambda values: tuple.__new__(cls, values)


@functools.lru_cache(maxsize=1)
def _bool_dumpers() -> tuple[type, type]:
    """Text and binary dumpers of Python bools as int8 (the binary one for bools inside a binary array)."""
    import struct

    from psycopg import adapters, pq
    from psycopg.adapt import Dumper

    class BoolAsInteger(Dumper):
        """True/False as 1/0: statusctl's flags are INTEGER columns, as in SQLite (which stores bools so)."""

        oid = adapters.types["int8"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    class BoolAsIntegerBinary(BoolAsInteger):
        format = pq.Format.BINARY

        def dump(self, obj: Any) -> bytes:
            return struct.pack("!q", 1 if obj else 0)

    return BoolAsInteger, BoolAsIntegerBinary


def register_types(conn: Any) -> None:
    """The adaptations SQLite-style code needs on this connection.

    Python bools go into INTEGER columns (as 1/0, in both formats). A list (the arrays
    that batched statements unnest) goes in binary: psycopg's text format escapes
    every quote of every element with a regular expression, which for the JSON
    payloads of 20,000 records took 5-10 s of a 100,000-row apply against 0.2 s in
    binary. An empty or all-NULL list still goes as text (psycopg's own fallback).
    Scalars keep the text format, whose untyped strings PostgreSQL casts as the SQL needs.
    """
    from psycopg.types.array import ListBinaryDumper, ListDumper

    text, binary = _bool_dumpers()
    conn.adapters.register_dumper(bool, binary)
    conn.adapters.register_dumper(bool, text)  # registered last: the one %s (auto) picks for a bare bool
    conn.adapters.register_dumper(list, ListDumper)
    conn.adapters.register_dumper(list, ListBinaryDumper)  # registered last: the one %s picks for a list
