"""`statusctl stack`: see, drain, retry and drop the status update records."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from statusctl.cli.common import (
    JsonOpt,
    LimitOpt,
    StoreOpt,
    YesOpt,
    age,
    confirm,
    db_target,
    notes,
    open_db,
    print_json,
    say,
    sub_app,
    table,
    warn,
    when,
)

if TYPE_CHECKING:
    from statusctl.delivery.controller import DrainReport

app = sub_app("The stack: status update records waiting for their cart.")
IdsArg = Annotated[list[str] | None, typer.Argument(help="Record ids (see `stack list`).")]
FailedOpt = Annotated[bool, typer.Option("--failed", help="Every failed record.")]


@app.command()
def status(
    json: JsonOpt = False,
    check: Annotated[bool, typer.Option("--check", help=(
        "Exit 3 when records failed, the queue is older than StackAlertAge, or a store is paused (its cart keeps "
        "failing at the network level) or misconfigured (e.g. a --secret-env variable not set here)."))] = False,
) -> None:
    """Controllers alive?, and per store: queued, due, retrying, failed, oldest age."""
    from statusctl.cli.top import store_problem, store_state
    from statusctl.core.settings import stack_settings
    from statusctl.domain.errors import ExitCode
    from statusctl.storage.stack import status as read_status

    db = open_db()
    data = read_status(db)
    alert_age = stack_settings(db).alert_age
    problems = [
        f"{s['store']}: {s['failed']} failed" for s in data["stores"] if s["failed"]
    ] + [
        f"{s['store']}: oldest record waits {age(s['oldest_age'])} (StackAlertAge {age(alert_age)})"
        for s in data["stores"] if s["oldest_age"] > alert_age
    ] + [store_problem(s, data["now"]) for s in data["stores"] if s["paused"] or s["misconfigured"]]
    # A store paused or misconfigured with nothing queued holds nothing up: said, but no problem for --check.
    idle = [store_problem(s, data["now"]) for s in data["other_store_problems"]]
    data["problems"] = problems
    if json:
        print_json(data)
    else:
        alive = [c for c in data["controllers"] if c["alive"]]
        if data["controllers"]:
            table("Controllers", ["pid", "host", "mode", "started", "last heartbeat", "sent", "state"],
                  [[c["pid"], c["host"], c["mode"], when(c["started"]), when(c["heartbeat"]), c["sent"],
                    "alive" if c["alive"] else "gone"] for c in data["controllers"]],
                  optional=["started", "sent", "mode"])
        say(f"{len(alive)} controller(s) running." if alive else "No controller is running.")
        if data["stores"]:
            table("Stack", ["store", "queued", "due", "sending", "retrying", "held", "failed", "oldest", "state"],
                  [[s["store"], s["queued"], s["due"], s["sending"], s["retrying"], s["held"], s["failed"],
                    age(s["oldest_age"]), store_state(s)]
                   for s in data["stores"]], optional=["sending", "held", "due"])
        else:
            say("The stack is empty.")
        for p in problems:
            say(f"Problem: {p}")
        for p in idle:
            say(f"Nothing queued for it: {p}")
    if check and problems:
        if not json:
            warn("Check failed: " + "; ".join(p.rstrip(".") for p in problems) + ".")  # a reason may end with one
        raise typer.Exit(ExitCode.DELIVERY)


@app.command()
def top(
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit (also when stdout is no terminal).")] = False,
) -> None:
    """Live full-screen view: controllers, per store counts, sends per second, last errors; q leaves."""
    from statusctl.cli.top import run_top

    run_top(interval=interval, once=once)


@app.command("list")
def list_(
    failed: FailedOpt = False,
    store: StoreOpt = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this order.")] = None,
    limit: LimitOpt = 1000,
    json: JsonOpt = False,
) -> None:
    """Records on the stack in queue order: attempts, next attempt, last error."""
    import time

    from statusctl.core.listing import cut_note, stack_page
    from statusctl.storage.stack import short_id

    rows, total = stack_page(open_db(), failed=failed, store=store, order=order, limit=limit, count=not json)
    if json:
        print_json(rows)
        return
    if not rows:
        say("No records.")
        return
    now = time.time()
    table(None, ["record", "order", "to", "state", "tries", "age", "next attempt"],
          [[short_id(r["id"]), r["order"], r["destination"], r["state"], r["attempts"], age(now - r["queued"]),
            # A failed record waits for `stack retry`, not for a time.
            None if r["state"] == "failed" else "now" if r["next_attempt"] <= now else when(r["next_attempt"])]
           for r in rows], optional=["age", "tries"])
    # Errors get whole lines: in a table column they fold to a few characters on a narrow terminal.
    notes(
        f"{short_id(r['id'])}  " + (f"[{r['last_status']}] " if r["last_status"] else "") + r["last_error"]
        + (f" — answer: {r['last_answer']}" if r["last_answer"] else "")
        for r in rows if r["last_error"]
    )
    if total is not None:
        say(cut_note(len(rows), total))


@app.command()
def history(
    order: Annotated[str | None, typer.Option("--order", help="Only this order.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time or age like 2h, 30m, 1d.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Only attempts sent to this store.")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", min=0, metavar="N", help="Show the latest N attempts (default 1000; 0: all); --json prints the "
        "same N as a plain list, the text says when older ones were left out.")] = 1000,
    json: JsonOpt = False,
) -> None:
    """Every delivery attempt: time, store, order, outcome, status, answer, duration."""
    from statusctl.core.listing import cut_note, history_page
    from statusctl.domain.timeparse import parse_since
    from statusctl.storage.retention import reach
    from statusctl.storage.stack import counted, short_id

    db = open_db()
    rows, total = history_page(db, order=order, since=parse_since(since) if since else None, store=store,
                               limit=limit, count=not json)
    if json:
        print_json(rows)
        return
    oldest, days = reach(db)
    kept = (f"The history reaches back to {when(oldest)}" if oldest is not None else "The history is empty") + (
        f"; attempts older than StackHistoryDays ({days} days) are pruned.")
    if not rows:
        say("No attempts recorded.")
        say(kept)
        return
    table(None, ["#", "at", "store", "order", "record", "try", "outcome", "status", "ms"],
          [[n, when(r["at"], compact=True), r["destination"], r["order_number"], short_id(r["uid"]), r["attempt"] if counted(r["reason"]) else "–", r["outcome"],
            r["status"], r["duration_ms"]] for n, r in enumerate(rows, start=1)], optional=["ms", "try", "status"])
    notes(
        f"#{n}  " + " — ".join(x for x in (r["reason"], r["answer"]) if x)
        for n, r in enumerate(rows, start=1) if r["reason"] or r["answer"]
    )
    if total is not None:
        say(cut_note(len(rows), total, latest=True))
    say(kept)


def _named(ctx: typer.Context, ids: list[str] | None, failed: bool) -> None:
    """`retry` and `drop` act on the records named: naming none is a usage error (exit 2), not "nothing to do"."""
    if not ids and not failed:
        ctx.fail("Name the records (ids from `statusctl stack list`), or give --failed.")


@app.command()
def retry(ctx: typer.Context, ids: IdsArg = None, failed: FailedOpt = False) -> None:
    """Make the named records (or every failed one, --failed) due now with fresh attempts."""
    from statusctl.storage.stack import retry as do_retry

    _named(ctx, ids, failed)
    say(f"{do_retry(open_db(), ids or [], failed=failed)} record(s) will be sent on the next run.")


@app.command()
def drop(ctx: typer.Context, ids: IdsArg = None, failed: FailedOpt = False, yes: YesOpt = False) -> None:
    """Delete the named records (or every failed one, --failed): the original's "Delete Records with Failed Attempts"."""
    from statusctl.storage.stack import count_selected
    from statusctl.storage.stack import drop as do_drop

    _named(ctx, ids, failed)
    db = open_db()
    n = count_selected(db, ids or [], failed=failed)
    if n == 0:
        say("Nothing to drop.")
        return
    confirm(f"Drop {n} record(s)? They will never be sent.", yes, f"drop {n} record(s)")
    say(f"Dropped {do_drop(db, ids or [], failed=failed)} record(s).")


@app.command()
def run(
    watch: Annotated[bool, typer.Option("--watch", help="Keep running until SIGINT/SIGTERM.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Send at most N records.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=256, help="Orders in parallel (default StackConcurrency).")] = None,
    store: Annotated[list[str] | None, typer.Option("--store", help="Only records for this store (repeatable).")] = None,
    json: JsonOpt = False,
) -> None:
    """Send what is due (once, for cron) or keep sending (--watch).

    Exit 0 when done, 3 when records remain failed or not delivered (also when a
    watcher's first signal stops it with records of its stores still due); a run cut
    short by a signal (a one-shot run's SIGINT/SIGTERM, a watcher's second one,
    or a stop while the database could not be written) exits 130 (SIGINT) or
    143 (SIGTERM), and its --json says "ok": false. A watcher's first signal is
    its normal stop.
    """
    from statusctl.cli.drain import run_controller
    from statusctl.domain.errors import ExitCode
    from statusctl.storage.stores import get_store

    db = open_db()
    try:
        # A misspelt --store would otherwise send nothing and exit 0 from cron forever.
        for name in store or []:
            get_store(db, name)
    finally:
        db.close()
    show_progress = not json and sys.stdout.isatty()
    report, signum = run_controller(db_target(), watch=watch, limit=limit, concurrency=concurrency,
                                    stores=store or None, progress=show_progress)
    if json:
        # A run cut short is never ok, even when nothing is left: its exit code says it was interrupted.
        print_json({**report.as_dict(), **({"ok": False} if signum is not None else {})})
    else:
        _summary(report, signum)
    if signum is not None:
        raise typer.Exit(ExitCode.for_signal(signum))
    if report.problems:
        raise typer.Exit(ExitCode.DELIVERY)


def _summary(report: DrainReport, signum: int | None) -> None:
    if signum is not None:
        import signal

        left = sum(t.left for t in report.stores.values())
        say(f"Interrupted by {signal.Signals(signum).name}: "
            + (f"{left} record(s) left on the stack." if left else "nothing is left on the stack."))
    elif not report.stores:
        say("Nothing was due.")
    if report.stores:
        table("Stack run", ["store", "sent", "retrying", "failed", "left"],
              [[name, t.sent, t.retrying, t.failed, t.left] for name, t in sorted(report.stores.items())])
    retrying = sum(t.retrying for t in report.stores.values())
    if retrying:
        say(f"{retrying} record(s) not delivered yet will be retried (StackRetrySchedule): "
            "`statusctl stack list` shows why.")
    if report.due_left:
        say(f"{report.due_left} record(s) were due when the watcher stopped: the next run sends them.")
    if report.failed_on_stack:
        say(f"{report.failed_on_stack} failed record(s) on the stack: `statusctl stack list --failed` shows why.")
    for name, reason in sorted(report.misconfigured.items()):
        say(f"Store {name}'s records wait (not counted as attempts): {reason}")
    for name, reason in report.paused.items():
        say(f"Store {name} is paused ({reason}); its records wait: `statusctl stack status` shows when it is probed.")
