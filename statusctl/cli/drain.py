"""Running a controller from the command line: signals, and a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from statusctl.core.controller import Controller, DrainReport


def run_controller(db: Path, *, progress: bool, **options: Any) -> DrainReport:
    """Run a controller until done (or, with watch, until SIGINT/SIGTERM) and return its report.

    The first signal stops claiming and lets in-flight sends finish; a second
    one cancels them and gives their leases back.
    """
    _log_to_stderr()
    bar = _ProgressBar(db) if progress else None
    controller = Controller(db, on_progress=bar.update if bar else None, **options)

    async def main() -> DrainReport:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                controller.stop()
            elif task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await controller.run()
        except asyncio.CancelledError:
            controller.report.interrupted = True
            return controller.report
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    if bar:
        with bar:
            return asyncio.run(main())
    return asyncio.run(main())


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

    def __init__(self, db: Path) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from statusctl.core.db import Database
        from statusctl.core.stack import status

        d = Database.open(db)
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
