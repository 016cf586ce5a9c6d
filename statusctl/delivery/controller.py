"""The stack controller: claim due records, send them in parallel, settle the outcomes.

One asyncio loop per controller. Each turn it writes the outcomes of the
sends that finished (one transaction), claims as many due records as it has
free slots (one transaction), and waits for the next send to finish. Records
of one order are never in flight twice: only an order's head record is
claimable, and it stays leased until settled. Several controllers (processes)
may share one database, on one machine (SQLite) or several (PostgreSQL); the
lease keeps them apart and brings a crashed controller's records back when it
runs out. Leases and due times are judged by the database's clock (the
server's), read inside each transaction, never this machine's: machines whose
clocks disagree still agree on whose a record is. Every write is one
`db.transactions()` unit, run again whole after a PostgreSQL serialization
failure or deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from statusctl.core.settings import StackSettings, stack_settings
from statusctl.delivery import sending
from statusctl.delivery.destinations import Destinations
from statusctl.delivery.drainreport import DrainReport, Progress, StoreTally
from statusctl.domain.errors import DatabaseError, DatabaseReplaced, DiskFull
from statusctl.storage import dialect, health, retention, stack
from statusctl.storage.backends import Target, open_database
from statusctl.storage.db import LOCK_SLICE_S

__all__ = ["Controller", "DrainReport", "StoreTally", "drain"]  # the report lives in statusctl.delivery.drainreport

log = logging.getLogger("statusctl.controller")
HEARTBEAT_S = 2.0
ONE_SHOT_WAIT_S = 1.0
POOL_SIZE = 4  # connections per HTTP client
STOP_GRACE_S = 3.0  # after a stop, how long a lock wait may still go on before its outcomes are given up
PRUNE_EVERY_S = 60.0  # a watcher prunes history older than StackHistoryDays this often, in small batches
# Sends finishing close together (a fast cart) are settled by one turn: when the sends in flight are
# expected to end less than the last turn's duration apart (a send's duration over the sends in flight),
# a send that ended waits for the others that long (at most HOLD_MAX_S). A turn costs about the same for
# one outcome as for eight; where sends end further apart than a turn lasts (a slow cart), waiting would
# only idle the slot.
HOLD_MAX_S = 0.015
T = TypeVar("T")


class Controller:
    """Drains the stack of one database; see the module docstring."""

    def __init__(
        self,
        db_path: Target,
        *,
        watch: bool = False,
        limit: int | None = None,
        concurrency: int | None = None,
        stores: list[str] | None = None,
        poll: float = 0.5,
        transport: Any = None,
        on_progress: Progress | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = open_database(db_path, create=False)
        self.db.lock_wait = float("inf")  # lock waits in slices, so that a stop is seen at once
        self.db.relax_durability()  # a lost acknowledgement only means a resend (receivers dedupe)
        self.settings: StackSettings = stack_settings(self.db)
        self.watch = watch
        self.limit = limit
        self.concurrency = concurrency or self.settings.concurrency
        self.stores = stores
        self.poll = poll
        self.transport = transport
        self.on_progress = on_progress
        self.rng = rng or random.Random()
        # Beat (and renew leases) often enough that a lease never runs out under a live send.
        self.beat = min(HEARTBEAT_S, self.settings.lease_seconds / 3)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.report = DrainReport()
        self._stopping = False
        self._replaced = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trouble_delay = 0.0
        self._wake = asyncio.Event()
        self._last_prune = -PRUNE_EVERY_S
        self._skew = 0.0  # the database's clock minus this machine's, as last read (`_clock`)
        self._inflight: dict[asyncio.Task[stack.Outcome], stack.Claimed] = {}
        self._finished: list[stack.Outcome] = []  # outcomes not yet written
        self._turn_s = 0.0  # how long the last turn took
        # A one-shot run leaves a store whose probe failed while it was paused: waiting out its pause
        # (or probing again and again under a short StackRetrySchedule) would keep a cron run going.
        self._left_paused: set[str] = set()
        self.dests = Destinations(self.db, self.owner)
        with self.db.reading() as conn:
            self.dests.reload(conn)
        self._retrying: dict[str, str] = {}  # uid -> destination, last outcome this run was retry

    def stop(self, *, now: bool = False) -> None:
        """Stop claiming; in-flight sends finish and are settled.

        A wait for a locked database lasts STOP_GRACE_S at most (with
        `now`, not at all); a database that still cannot be written then is
        given up: the outcomes not yet written are lost, and their records come
        back when their leases end. Safe to call from a signal handler. The
        report says `interrupted` unless this is a watcher's first stop.
        """
        self._stopping = True
        if now or not self.watch:  # a watcher's plain stop is its normal end; anything else cuts a run short
            self.report.interrupted = True
        self._cap_lock_wait(0.0 if now else STOP_GRACE_S)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    def _cap_lock_wait(self, seconds: float) -> None:
        self.db.lock_wait = min(self.db.lock_wait if self.db.lock_wait is not None else seconds, seconds)

    # -- registration --------------------------------------------------------

    def _write(self, work: Callable[[Any], T]) -> T:
        """`work(conn)` as one transaction, run again whole where PostgreSQL asks (`db.transactions()`)."""
        for attempt in self.db.transactions():
            with attempt as conn:
                result = work(conn)
        return result

    def _register(self) -> None:
        mode = "watch" if self.watch else "run"
        self._write(lambda conn: stack.register_controller(conn, self.owner, os.getpid(), socket.gethostname(),
                                                           mode, now=self._clock(conn)))
        self.dests.check_notes_of_others()

    def _heartbeat(self, sending: list[int]) -> None:
        """Say we are alive, keep the leases of the records we are sending, notice new settings.

        First, that the database file is still the one opened (DatabaseReplaced if not).
        """
        self.db.check_identity()

        def beat(conn: Any) -> None:
            now = stack.renew_for(conn, self.owner, sending, self.settings.lease_seconds)
            self._skew = now - time.time()
            stack.beat(conn, self.owner, self.report.sent, now=now)

        self._write(beat)
        self.dests.check_notes_of_others()
        self._maybe_prune()

    def _maybe_prune(self) -> None:
        """Now and then, a few small batches of history older than StackHistoryDays."""
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            retention.prune(self.db, self.settings.history_days)

    def _unregister(self) -> None:
        self._write(lambda conn: stack.unregister_controller(conn, self.owner))

    # -- sending -------------------------------------------------------------

    async def _send(self, client: Any, claimed: stack.Claimed) -> stack.Outcome:
        """One attempt of one claimed record (statusctl.delivery.sending)."""
        return await sending.send(self.dests, self.report, client, claimed, skew=self._skew)

    def _turn(self, outcomes: list[stack.Outcome], room: int) -> list[stack.Claimed]:
        """One transaction per turn: settle what finished, then claim up to `room` records."""
        if not outcomes and room <= 0:
            return []
        s = self.settings
        notes = self.dests.pending_notes()
        skipped = self._skipped()

        def turn(conn: Any) -> tuple[list[stack.Outcome], list[stack.Claimed]]:
            # The clock is read once the locks are ours: a lease measured from before a long wait
            # for them would be partly (or wholly) spent when it is granted.
            began = stack.begin_turn(conn, [o.claimed.destination for o in outcomes] + [d for d, _ in notes],
                                     claiming=room > 0, stores=self.stores, skip_destinations=skipped)
            now = began.now
            self._skew = now - time.time()
            self.dests.reload(conn, began.config_version)  # before anything claimed in this turn is sent
            written = stack.settle(conn, outcomes, self.owner, now=now, max_attempts=s.max_attempts,
                                   schedule=s.retry_schedule, rng=self.rng) if outcomes else []
            self.dests.write_notes(conn, notes, now)
            batch = stack.claim(conn, self.owner, room, s.lease_seconds, now=now, stores=self.stores,
                                skip_destinations=skipped, store_limits=self.dests.limits, turn=began) if room > 0 else []
            return written, batch

        started = time.monotonic()
        written, batch = self._write(turn)
        self._turn_s = time.monotonic() - started
        self.dests.notes_written(notes, self.report.misconfigured)
        self._count(written)
        if not self.watch:
            self._left_paused |= {o.claimed.destination for o in written if o.transport and not stack.counted(o.reason)}
        return batch

    def _skipped(self) -> list[str]:
        """Destinations not to claim from: those this machine cannot use, and those a one-shot run left paused."""
        return sorted({*self.dests.skipped(), *self._left_paused})

    def _clock(self, conn: Any) -> float:
        """The database's clock in this transaction (after BEGIN IMMEDIATE's lock on SQLite: a wait for it must
        not shorten the leases)."""
        now = dialect.now(conn)
        self._skew = now - time.time()
        return now

    def _count(self, outcomes: list[stack.Outcome]) -> None:
        if outcomes:
            self.report.count([(o.claimed.uid, o.claimed.destination, o.kind) for o in outcomes], self._retrying)
            if self.on_progress:
                self.on_progress(self.report)

    # -- the loop ------------------------------------------------------------

    async def run(self) -> DrainReport:
        """Drain (once, or until stopped with `watch`) and return what happened."""
        from statusctl.carts.base import make_client

        self._loop = asyncio.get_running_loop()
        self._register()
        self._maybe_prune()
        try:
            async with contextlib.AsyncExitStack() as clients_:
                # httpcore's pool slows down as it grows, so use one client per POOL_SIZE connections.
                clients = [
                    await clients_.enter_async_context(make_client(self.transport, connections=POOL_SIZE))
                    for _ in range(-(-self.concurrency // POOL_SIZE))
                ]
                await self._drain(clients)
        except (asyncio.CancelledError, _GiveUp) as exc:
            self.report.interrupted = True
            for task in self._inflight:
                task.cancel()
            self._let_go(list(self._inflight.values()), self._finished)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._finish()
        return self.report

    async def _drain(self, clients: list[Any]) -> None:
        """The loop: a turn (settle, claim), the sends it claimed started, a beat when due, then a wait.

        A watcher outlives a locked, full or failing database: the outcomes stay
        in `_finished` for the next turn, and the sends in flight go on.
        """
        claimed_total = 0
        last_beat = time.monotonic()
        while True:
            room = 0 if self._stopping else self.concurrency - len(self._inflight)
            if self.limit is not None:
                room = min(room, self.limit - claimed_total)
            try:
                batch = self._turn(self._finished, room)
                if self._trouble_delay:
                    log.warning("The database %s answers again; carrying on.", self.db.name)
                self._trouble_delay = 0.0
                self._finished = []
                for c in batch:
                    self._inflight[asyncio.create_task(self._send(clients[c.seq % len(clients)], c))] = c
                claimed_total += len(batch)
                if time.monotonic() - last_beat >= self.beat:
                    self._heartbeat([c.seq for c in self._inflight.values()])
                    last_beat = time.monotonic()
                wait = self._idle_wait() if not self._inflight and not self._stopping else None
            except DatabaseError as exc:
                await self._database_trouble(exc)
                continue
            if not self._inflight:
                if self._stopping or (self.limit is not None and claimed_total >= self.limit):
                    return
                if not batch and wait is None:
                    return
                await self._nap(wait or 0.0)
                continue
            await self._collect()

    async def _collect(self) -> None:
        """Wait for the next send to end (and, see HOLD_MAX_S, for those ending right after it), into `_finished`."""
        done, rest = await asyncio.wait(self._inflight, timeout=self.beat, return_when=asyncio.FIRST_COMPLETED)
        if done and rest and not self._stopping:
            took = max(t.result().duration_ms for t in done) / 1000
            if took / (len(done) + len(rest)) < self._turn_s:
                more, _ = await asyncio.wait(rest, timeout=min(self._turn_s, HOLD_MAX_S))
                done |= more
        for task in done:
            self._inflight.pop(task)
            self._finished.append(task.result())

    async def _nap(self, seconds: float) -> None:
        """Sleep up to `seconds`; a stop (or anything else that sets `_wake`) ends it early."""
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _database_trouble(self, exc: DatabaseError) -> None:
        """Log the fault and wait (1 s, doubling to 30 s) before a watcher tries the database again.

        A replaced database file and a one-shot run's fault end the run with
        the error; any fault once stopping ends it as interrupted (`_GiveUp`).
        On a full disk under SQLite the write-ahead log is first checkpointed and
        truncated (a PostgreSQL server looks after its own).
        """
        if isinstance(exc, DatabaseReplaced):
            self._replaced = True
            raise exc
        if self._stopping:
            log.warning("%s Stopping without writing the last outcomes; their records are sent again "
                        "once their leases end.", exc)
            raise _GiveUp from None
        if not self.watch:
            raise exc
        self._trouble_delay = min(30.0, max(1.0, self._trouble_delay * 2))
        full = isinstance(exc, DiskFull) and self.db.dialect == dialect.SQLITE
        freed = self.db.give_back_space() if full else None
        given = "" if not full else (
            " Its write-ahead log cannot be given back until there is room for the checkpoint." if freed is None
            else f" Gave back {freed / 1e6:.1f} MB of write-ahead log.")
        log.warning("%s%s Trying again in %.0f s.", exc, given, self._trouble_delay)
        if not self._stopping:
            await self._nap(self._trouble_delay)
        if full and freed is None and not self._stopping:
            # Room may be back: first let the checkpoint use it and empty the log, then write.
            freed = self.db.give_back_space()
            if freed is not None:
                log.warning("There is room again on the disk holding %s: gave back %.1f MB of write-ahead log "
                            "and carried on.", self.db.name, freed / 1e6)

    def _idle_wait(self) -> float | None:
        """How long to sleep when idle; None when a one-shot run is done.

        A watcher sleeps the poll, or less when a retry is due sooner. A
        one-shot run waits only for retries due within a second, so a drain
        with a short retry schedule finishes its retries in the same run.
        """
        with self.db.reading() as conn:
            soonest = stack.soonest_due(conn, now=dialect.now(conn), stores=self.stores,
                                        skip_destinations=self._skipped(), store_limits=self.dests.limits)
        if self.watch:
            return self.poll if soonest is None else max(0.005, min(self.poll, soonest))
        if soonest is not None and soonest <= ONE_SHOT_WAIT_S:
            return max(0.001, soonest)
        return None

    def _let_go(self, sending: list[stack.Claimed], finished: list[stack.Outcome]) -> None:
        """Interrupted: give back the leases of the sends cut short, write what finished (if the database lets us)."""
        self._cap_lock_wait(LOCK_SLICE_S)
        try:
            self._write(lambda conn: stack.release(conn, self.owner, sending))
            self._turn(finished, 0)
        except DatabaseError as exc:
            log.warning("%s The leases of the records being sent end on their own.", exc)

    def _finish(self) -> None:
        try:
            with self.db.reading() as conn:
                now = dialect.now(conn)
                still = stack.still_on_stack(conn, list(self._retrying))
                left, self.report.failed_on_stack = stack.left_on_stack(conn, self.stores)
                problems = health.shown_problems(conn, now=now)
                due = stack.due_left(conn, self._mine(left), now=now) if self.watch else {}
            self.report.what_is_left({u: d for u, d in self._retrying.items() if u in still}, left, self._mine(left),
                                     due, problems)
            if not self._replaced:  # not one more write into a file that is no longer the database
                self._unregister()
        except DatabaseError as exc:
            if not (self._stopping or self._replaced):
                raise
            log.warning("%s", exc)
        finally:
            self.db.close()

    def _mine(self, left: dict[str, int]) -> dict[str, int]:
        """The destinations of `left` this controller drains (its --store ones, or all) that have records."""
        return {d: n for d, n in left.items() if n and (not self.stores or d in self.stores)}


class _GiveUp(Exception):
    """Stopping while the database cannot be written: end the run as interrupted."""


def drain(db_path: Target, **options: Any) -> DrainReport:
    """Run a controller to completion in a fresh event loop (what `stack run` does)."""
    controller = Controller(db_path, **options)
    return asyncio.run(controller.run())
