"""Running a controller from the command line: signals, and a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from statusctl.delivery.controller import Controller, DrainReport
from statusctl.storage.backends import Target


def run_controller(db: Target, *, progress: bool, **options: Any) -> tuple[DrainReport, int | None]:
    """Run a controller until done (or, with watch, until SIGINT/SIGTERM); its report, and the signal that cut it short.

    The first signal stops claiming and lets in-flight sends finish (a wait for
    a locked database lasts a few seconds more at most); a second one cancels
    them and gives their leases back. The signal is None when the run was not
    cut short: a one-shot run that finished, or a watcher whose first signal
    let it settle everything it had sent (its normal way to stop).
    """
    _log_to_stderr()
    bar = _ProgressBar(db) if progress else None
    controller = Controller(db, on_progress=bar.update if bar else None, **options)
    received: list[int] = []

    async def main() -> DrainReport:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal(signum: int, frame: object) -> None:
            received.append(signum)
            if len(received) == 1:
                controller.stop()
            elif len(received) == 2:  # (later ones: it is already stopping at once)
                controller.stop(now=True)
                if task is not None:
                    loop.call_soon_threadsafe(task.cancel)

        # A Python-level handler, not only the loop's: it runs (between lock-wait slices) even while
        # the loop is held up by a database call. The loop's own handler is a no-op, kept for the
        # wakeup fd it sets, which wakes a loop that sleeps when the signal arrives.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: None)
            signal.signal(sig, on_signal)
        try:
            try:
                report = await controller.run()
            except asyncio.CancelledError:
                report = controller.report
            # A second signal that came as the run ended leaves a cancel pending: take it here.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
            return report
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    if bar:
        with bar:
            report = asyncio.run(main())
    else:
        report = asyncio.run(main())
    return report, received[0] if received and report.interrupted else None


def _log_to_stderr() -> None:
    """The controller's warnings (e.g. a watcher waiting out a locked database) as lines on stderr."""
    import logging

    logger = logging.getLogger("statusctl")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("Warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


class _ProgressBar:
    """A Rich progress bar over the records due when the run started (more may come)."""

    def __init__(self, db: Target) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from statusctl.storage.backends import open_database
        from statusctl.storage.stack import status

        d = open_database(db, create=False)
        try:
            due = sum(s["due"] for s in status(d)["stores"])
        finally:
            d.close()
        self.progress = Progress(
            TextColumn("[bold]Sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(), transient=False,
        )
        self.task = self.progress.add_task("send", total=max(due, 1), detail="")

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, report: DrainReport) -> None:
        done = sum(t.sent + t.failed for t in report.stores.values())
        retrying = report.attempts - done
        total = max(self.progress.tasks[0].total or 0, done)
        self.progress.update(self.task, completed=done, total=total,
                             detail=f"sent {report.sent} · failed {sum(t.failed for t in report.stores.values())}"
                             + (f" · retrying {retrying}" if retrying > 0 else ""))
