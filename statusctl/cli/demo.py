"""`statusctl demo`: the whole flow against a built-in demo cart on loopback."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from statusctl.cli.common import JsonOpt, print_json, say, table, when

if TYPE_CHECKING:
    from statusctl.cli.demorun import DemoResult


def demo(
    oss: Annotated[bool, typer.Option("--oss", help="Also start the Order Status System and print its address.")] = False,
    json: JsonOpt = False,
) -> None:
    """Run the whole flow on a temporary database against a demo cart, then clean up."""
    from statusctl.cli.demorun import run_demo
    from statusctl.domain.errors import ExitCode

    try:
        with _unwind_on_signals():
            result = run_demo(step=(lambda s: None) if json else (lambda s: say(f"• {s}")), oss=oss,
                              hold=lambda r: _show(r, json))
    except _Stopped as stop:  # the temporary database and the servers are gone by now
        raise typer.Exit(ExitCode.for_signal(stop.signum)) from None
    assert result.report is not None
    if result.report.problems:
        raise typer.Exit(ExitCode.DELIVERY)


def _show(result: DemoResult, json: bool) -> None:
    """Print what happened while the demo servers still run; with --oss, wait for Enter on a terminal."""

    report = result.report
    assert report is not None
    if json:
        print_json({"steps": result.steps, "run": report.as_dict(), "received": result.received,
                    "history": result.history, "orders": result.orders, "oss_url": result.oss_url,
                    "oss_link": result.oss_link})
    else:
        table("What the demo cart received", ["#", "order", "status", "tracking", "form"],
              [[i, r["order"], r["status"], ", ".join(r["tracking"]) or None, r["form"]]
               for i, r in enumerate(result.received, start=1)])
        from statusctl.storage.stack import short_id

        table("Stack history", ["at", "order", "record", "try", "outcome", "status", "ms"],
              [[when(h["at"], compact=True), h["order_number"], short_id(h["uid"]), h["attempt"], h["outcome"],
                h["status"], h["duration_ms"]] for h in result.history], optional=["ms", "try"])
        table("Orders now", ["order", "store", "label", "items"],
              [[o["number"], o["store"], o["label"], o["items"]] for o in result.orders])
    if result.oss_url and not json:
        say(f"Order Status System: {result.oss_url}/  (order 2001, postal code 02139)")
        say(f"Signed link for e-mails: {result.oss_link}")
        if sys.stdin.isatty():
            try:
                _wait_for_enter("Press Enter to stop the demo servers: ")
            except KeyboardInterrupt:  # Ctrl-C: a way to stop the demo, not an error to report
                sys.stdout.write("\n")
                raise _Stopped(signal.SIGINT) from None


def _wait_for_enter(prompt: str) -> None:
    """Wait for a line (or the end) on stdin, waking for signals too.

    A signal may be delivered to one of the servers' threads, and then a main thread
    blocked in read() never runs its handler: the wakeup pipe ends the wait instead.
    """
    import os
    import select

    sys.stdout.write(prompt)
    sys.stdout.flush()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    previous = signal.set_wakeup_fd(wake_w)
    try:
        while True:
            ready, _, _ = select.select([sys.stdin, wake_r], [], [])
            if sys.stdin in ready:
                sys.stdin.readline()  # a line, or "" at the end (Ctrl-D): both mean go on
                return
            os.read(wake_r, 64)  # a signal: its handler runs now, in this thread, and may raise
    finally:
        signal.set_wakeup_fd(previous)
        os.close(wake_r)
        os.close(wake_w)


class _Stopped(Exception):
    """A signal ended the demo: raised where the program stands, so every `with` cleans up on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _unwind_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (the terminal closed) unwind like Ctrl-C: the temporary folder is removed.

    Their default action ends the process on the spot, leaving /tmp/statusctl-demo-* behind.
    A second signal while cleaning up is ignored, so the clean-up finishes.
    """
    wanted = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    fired: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise _Stopped(signum)

    saved = {sig: signal.signal(sig, stop) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
