"""Tables and lines that fit the terminal without breaking what a person copies.

Names, ids, URLs, dates and numbers are never cut: a cell like `woocommerc/e`
or `http://127.0.0.1/:18081` cannot be copied. A cell may wrap only at its
spaces (an error, a meaning, "Order Received"), never inside a word; a date
with a time (`2026-12-01 08:27:51`) does not wrap at all. When the table is still too wide,
the columns a command names as optional are left out (and a line says so);
when even that is too wide, each row is printed as `column  value` lines,
which the terminal wraps without cutting a value in two.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

# Free text: wraps at spaces whenever the table needs the room.
FREE_TEXT = frozenset({
    "meaning", "how", "customer note", "records go to", "cart values", "last error", "reason", "name",
    "items", "events", "note", "error", "customer",
})
# Cells that hold a space but are read and copied as one (dates and times): never wrapped.
WHOLE = frozenset({"at", "date", "next attempt", "started", "last heartbeat", "shipped", "oldest", "age"})
# Every other column (names, ids, URLs, numbers) is shown whole while the optional columns can
# still be left out; only then may a name of several words ("Order Received") wrap at its spaces.
# No column ever cuts a word.
BORDERS = 3  # per column: one padding space each side and one rule


def cell_width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _longest_word(text: str) -> int:
    return max((cell_width(w) for w in text.split()), default=0)


def render_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                 optional: Sequence[str] = ()) -> None:
    """Print a table that fits the console; None shows as an en dash.

    `optional`: columns that may be left out, first ones first, before the table falls
    back to one `column  value` block per row.
    """
    from rich.table import Table

    from statusctl.cli.common import console
    from statusctl.domain.display import printable

    out = console()
    cells = [["–" if v is None else printable(v) for v in row] for row in rows]
    keep = list(range(len(columns)))
    left_out: list[str] = []
    widths = _fit(columns, cells, keep, out.width)
    for name in optional:
        if widths is not None:
            break
        if name in columns:
            keep.remove(columns.index(name))
            left_out.append(name)
            widths = _fit(columns, cells, keep, out.width)
    if widths is None:
        widths = _fit(columns, cells, keep, out.width, names_wrap=True)
    if widths is None:
        _blocks(title, columns, cells, out.width)
        return
    t = Table(title=printable(title) if title else None, title_justify="left", header_style="bold")
    for i, width in zip(keep, widths, strict=True):  # a width never cuts a word: see _fit
        t.add_column(columns[i], width=width, no_wrap=columns[i] in WHOLE, overflow="crop")
    for row in cells:
        t.add_row(*[row[i] for i in keep])
    out.print(t)
    if left_out:
        out.print(f"({', '.join(left_out)} left out to fit {out.width} columns; --json shows everything.)")


def _fit(columns: Sequence[str], cells: list[list[str]], keep: list[int], total: int, *,
         names_wrap: bool = False) -> list[int] | None:
    """Each kept column's width so the table fits `total` cells, or None when it cannot.

    Whole columns get their longest cell; free text (and with `names_wrap` every column but
    WHOLE) shares what is left, each at least its longest word, more for those with more to say.
    """
    room = total - 1 - BORDERS * len(keep)
    fixed: dict[int, int] = {}
    least: dict[int, int] = {}
    most: dict[int, int] = {}
    for i in keep:
        texts = [columns[i], *(row[i] for row in cells)]
        if columns[i] in WHOLE or not (names_wrap or columns[i] in FREE_TEXT):
            fixed[i] = max(cell_width(t) for t in texts)
        else:
            least[i] = max(_longest_word(t) for t in texts) or 1
            most[i] = max(cell_width(t) for t in texts)
    room -= sum(fixed.values())
    if room < sum(least.values()):
        return None
    share = dict(least)
    spare = room - sum(least.values())
    wanted = {i: most[i] - least[i] for i in least}
    if sum(wanted.values()) <= spare:
        share = most
    elif spare > 0:
        want = sum(wanted.values())
        for i in least:
            share[i] += spare * wanted[i] // want
    return [fixed[i] if i in fixed else share[i] for i in keep]


def _blocks(title: str | None, columns: Sequence[str], cells: list[list[str]], width: int) -> None:
    """Each row as `column  value` lines, a blank line between rows: nothing cut, on any width."""
    from statusctl.domain.display import printable

    pad = max(cell_width(c) for c in columns)
    lines = [printable(title)] if title else []
    for n, row in enumerate(cells):
        if n:
            lines.append("")
        for name, value in zip(columns, row, strict=True):
            head = name.ljust(pad) + "  "
            if name in WHOLE:
                lines.append(head + value)
            else:
                lines += wrap(value, width, first=head, rest=" " * len(head))
    write_lines(lines)


def wrap(text: str, width: int, *, first: str = "", rest: str = "") -> list[str]:
    """Text wrapped at spaces to `width`, as lines; a word longer than that stays whole."""
    return textwrap.wrap(text, max(width, 20), initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def write_lines(lines: Iterable[str]) -> None:
    """Lines through the console as they are: Rich neither wraps nor cuts them."""
    from statusctl.cli.common import console

    out = console()
    for line in lines:
        out.print(line, soft_wrap=True)
