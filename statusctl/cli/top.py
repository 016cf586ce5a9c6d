"""`statusctl stack top`: a live, full-screen view of the stack (the original's one-key stack check).

It only reads the database (`statusctl.core.dashboard`), so it runs beside any
number of controllers. `render` builds one frame from a snapshot; `run_top`
refreshes it about once a second until q or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from statusctl.cli.common import age
from statusctl.domain.display import printable

if TYPE_CHECKING:
    from rich.console import RenderableType

    from statusctl.core.dashboard import Rate, Snapshot

BARS = " ▁▂▃▄▅▆▇█"
CHART_ROWS = 4
WINDOW_S = 300.0
BUCKET_S = 5.0


def run_top(*, interval: float = 1.0, once: bool = False) -> None:
    """Show the view until q or Ctrl-C; one frame only with `once` or when stdout is not a terminal."""
    from rich.live import Live

    from statusctl.cli.common import console, db_target, open_db
    from statusctl.core.dashboard import snapshot
    from statusctl.storage.backends import display_name

    db = open_db()
    out = console()
    source = display_name(db_target())

    def frame() -> RenderableType:  # the width is read on every frame: a resized terminal refits
        return render(snapshot(db, window=WINDOW_S, bucket=BUCKET_S), source, interval=None if once else interval,
                      width=out.width)

    if once or not out.is_terminal:
        out.print(frame())
        return
    try:
        with _keys() as read_key, Live(frame(), console=out, screen=True, auto_refresh=False) as live:
            while True:
                deadline = time.monotonic() + interval
                while (left := deadline - time.monotonic()) > 0:
                    if read_key(left) in ("q", "Q"):
                        return
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        db.close()


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """A `read(timeout) -> key or ''`; keys are read unbuffered only when stdin is a terminal."""
    import os
    import select

    def wait(timeout: float) -> str:
        time.sleep(timeout)
        return ""

    try:
        import termios
        import tty
    except ImportError:  # no termios (Windows): Ctrl-C still leaves
        yield wait
        return
    if not sys.stdin.isatty():
        yield wait
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)

    def read(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 1).decode(errors="replace") if ready else ""

    try:
        tty.setcbreak(fd)  # keeps ISIG: Ctrl-C still raises KeyboardInterrupt
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def store_state(s: dict[str, object]) -> str:
    """A store's sending state in one short word (a table column at 80 columns): ok, paused (its circuit
    breaker) or config (misconfigured for a controller); the problem lines under the table say why."""
    return "config" if s["misconfigured"] else "paused" if s["paused"] else "ok"


def store_problem(s: dict[str, object], now: float) -> str:
    """One sentence: why a store's records do not go out (paused by its breaker, or misconfigured)."""
    if s["misconfigured"]:
        return f"{s['store']}: misconfigured for controller {s['misconfigured_by']}: {s['misconfigured']}"
    until = s["paused_until"]
    resume = (f"probed again in {age(max(0.0, float(until) - now))}" if isinstance(until, float) and until > now
              else "being probed")
    return f"{s['store']}: paused ({resume}): {s['pause_reason']}"


def render(snap: Snapshot, source: str, *, interval: float | None = 1.0, width: int | None = None) -> RenderableType:
    """One frame: header, controllers, per-store counts, the send-rate chart, the last errors.

    With `width`, the frame fits it: columns are left out (never cut mid-word) and the chart
    shows the latest bars that fit.
    """
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [_head(snap, source, interval), _controllers(snap), Text()]
    parts.append(_stack(snap, width) if snap.stores else Text("The stack is empty.", style="green"))
    for s in [*snap.stores, *snap.other_problems]:
        if s["paused"] or s["misconfigured"]:
            parts.append(Text(store_problem(s, snap.now), style="yellow"))

    parts.append(_chart(snap.rate, width))
    parts.append(Text())
    if snap.errors:
        parts.append(_errors(snap, width))
    else:
        parts.append(Text("No errors in the history.", style="dim"))
    return Group(*parts)


def _head(snap: Snapshot, source: str, interval: float | None) -> RenderableType:
    """The first line: the command, the database, the time, and how to leave."""
    from rich.text import Text

    head = Text()
    head.append("statusctl stack top", style="bold")
    head.append(f"  {printable(source)}  {time.strftime('%H:%M:%S', time.localtime(snap.now))}")
    if interval is not None:
        head.append(f"  every {interval:g}s · q or Ctrl-C to leave", style="dim")
    return head


def _controllers(snap: Snapshot) -> RenderableType:
    """The controllers running (or that none is)."""
    from rich.text import Text

    alive = snap.alive
    if not alive:
        gone = len(snap.controllers)
        return Text("No controller is running" + (f" ({gone} gone without a heartbeat)" if gone else "") + ".",
                    style="yellow")
    line = Text(f"Controllers: {len(alive)} running", style="green")
    for c in alive:
        line.append(f" · pid {c['pid']} on {printable(c['host'])} ({c['mode']}, sent {c['sent']}, "
                    f"heartbeat {age(snap.now - c['heartbeat'])} ago)", style="")
    return line


def _stack(snap: Snapshot, width: int | None) -> RenderableType:
    """The per-store counts, columns left out to fit `width`, with a total row for several stores."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", title="Stack", title_justify="left")
    names = [printable(s["store"]) for s in snap.stores]
    counts = ("queued", "due", "sending", "retrying", "failed")
    widths = {"store": max([5, *map(len, names)]), **{c: len(c) for c in counts}, "oldest": 6,
              "store state": len("misconfigured")}
    shown = fitting(widths, width, optional=["sending", "due", "oldest", "retrying"])
    for col in shown:
        t.add_column(col, no_wrap=True, min_width=widths[col], justify="left" if col in ("store", "store state")
                     else "right")
    for name, s in zip(names, snap.stores, strict=True):
        state = store_state(s)
        cells = {"store": name, **{c: str(s[c]) for c in counts}, "oldest": age(s["oldest_age"]),
                 "store state": state}
        styles = {"failed": "bold red" if s["failed"] else "", "store state": "" if state == "ok" else "bold yellow"}
        t.add_row(*[Text(cells[c], style=styles.get(c, "")) for c in shown])
    if len(snap.stores) > 1:
        tot = {"store": "all", **{c: str(snap.totals[c]) for c in counts}, "oldest": "", "store state": ""}
        t.add_row(*[tot[c] for c in shown], style="bold")
    return t

def fitting(widths: dict[str, int], width: int | None, *, optional: list[str]) -> list[str]:
    """The columns to show: all when they fit `width` (or no width is given), else without the
    optional ones, first ones first. A column is never narrower than its header or cells."""
    shown = list(widths)
    for name in optional:
        if width is None or sum(widths[c] + 3 for c in shown) <= width:
            break
        shown.remove(name)
    return shown


def _errors(snap: Snapshot, width: int | None) -> RenderableType:
    """The last errors, newest first; the reason gets the rest of the line (cut with … at its end)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    e = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", title="Last errors", title_justify="left",
              expand=True)
    # Order numbers come from imported files and reasons from carts' answers: escaped, whatever
    # console renders the frame.
    rows = [{
        "at": time.strftime("%H:%M:%S", time.localtime(r["at"])), "store": printable(r["destination"]),
        "order": printable(r["order_number"]),
        "outcome": "failed" if r["outcome"] == "failed" else f"retry (try {r['attempt']})" if r["counted"]
        else "not counted",
        "status": "–" if r["status"] is None else str(r["status"]), "reason": printable(r["reason"] or ""),
    } for r in snap.errors]
    widths = {c: max([len(c), *(len(row[c]) for row in rows)]) for c in ("at", "store", "order", "outcome", "status")}
    shown = fitting({**widths, "reason": 20}, width, optional=["status", "outcome", "at"])
    for col in shown:
        if col == "reason":
            e.add_column(col, overflow="ellipsis", no_wrap=True, ratio=1)
        else:
            e.add_column(col, no_wrap=True, min_width=widths[col], justify="right" if col == "status" else "left")
    for row, r in zip(rows, snap.errors, strict=True):
        style = "red" if r["outcome"] == "failed" else "yellow"
        e.add_row(*[Text(row[c], style=style) if c == "outcome" else row[c] for c in shown])
    return e


def bars(values: list[float], rows: int = CHART_ROWS) -> list[str]:
    """A bar chart of `rows` text lines (top first), one character per value, scaled to the largest."""
    peak = max(values, default=0.0)
    levels = rows * 8
    heights = [0 if v <= 0 or peak <= 0 else max(1, round(v / peak * levels)) for v in values]
    return ["".join(BARS[min(8, max(0, h - r * 8))] for h in heights) for r in range(rows - 1, -1, -1)]


def _chart(rate: Rate, width: int | None = None) -> RenderableType:
    from rich.text import Text

    per_s = rate.per_second
    if width is not None:  # the latest bars that fit beside the scale
        per_s = per_s[-max(10, width - len(f"{max(per_s, default=0.0):.1f}/s") - 3):]
    minutes = len(per_s) * rate.bucket_seconds / 60
    peak = max(per_s, default=0.0)
    text = Text()
    text.append(f"Sent per second, last {minutes:.2g} min ({rate.bucket_seconds:g} s a bar): ", style="bold")
    text.append(f"now {per_s[-1] if per_s else 0:.1f}/s · peak {peak:.1f}/s · "
                f"{rate.total_sent} sent, {rate.total_errors} error{'' if rate.total_errors == 1 else 's'}\n")
    label = f"{peak:.1f}/s"
    pad = len(label)
    for i, line in enumerate(bars(per_s)):
        text.append((label if i == 0 else "").rjust(pad) + " │", style="dim")
        text.append(line, style="cyan")
        text.append("\n")
    text.append("0".rjust(pad) + " └" + "─" * len(per_s) + "\n", style="dim")
    left = f"-{minutes:.2g}m"
    text.append(" " * (pad + 2) + left + "now".rjust(len(per_s) - len(left)), style="dim")
    return text
