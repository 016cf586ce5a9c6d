"""What controllers share about a store (`store_health`) does not outlive what it was about: the store's
removal or change, the controller that noted a misconfiguration, or a probe released without a send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from statusctl.storage import health, stack
from statusctl.storage.backends import Target, open_database
from statusctl.storage.db import Database

from .stackhelpers import SECRET, STORE, cli, fill, hook_url, opened, serve, setup_db

URL = "http://127.0.0.1:9/hooks/status"  # never contacted
REASON = "Store 'hook': environment variable HOOK_SECRET (secret 'secret') is not set."


@pytest.fixture
def db(target: Target) -> Iterator[Database]:
    yield from opened(target, {STORE: URL, "other": URL})


def pause_and_note(db: Database, dest: str, *, by: str = "cron:1:ab", at: float | None = None) -> None:
    now = time.time()
    with db.tx() as conn:
        for _ in range(health.BREAKER_FAILURES):
            health.note_transport_failure(conn, dest, "timed out (ReadTimeout)", now=now, schedule=(60.0,))
        health.note_misconfigured(conn, dest, REASON, by, now=now if at is None else at)


def shown(db: Database) -> dict[str, dict[str, object]]:
    with db.reading() as conn:
        return health.shown_problems(conn, now=time.time())


def test_removing_a_store_forgets_its_pause_and_its_misconfiguration(db):
    from statusctl.core.stores import remove_store

    pause_and_note(db, "other")
    assert set(shown(db)) == {"other"}
    remove_store(db, "other")
    with db.reading() as conn:
        assert health.read(conn) == {}
    assert cli("stack", "status", "--json").json()["other_store_problems"] == []


def test_changing_a_store_forgets_what_was_known_about_its_old_settings(db):
    from statusctl.core.storeedit import set_store

    pause_and_note(db, STORE)
    pause_and_note(db, "other")
    set_store(db, STORE, "http://127.0.0.1:10/hooks/status", [], [], [], check=None)
    with db.reading() as conn:
        assert set(health.read(conn)) == {"other"}, "only the changed store's row goes"


def test_a_misconfiguration_noted_by_a_controller_gone_for_long_expires(db):
    now = time.time()
    with db.tx() as conn:
        stack.register_controller(conn, "watch:2:cd", 2, "host", "watch", now=now)
        # Noted long ago by a controller that is still alive (it beats): still shown.
        health.note_misconfigured(conn, STORE, REASON, "watch:2:cd", now=now - 2 * health.MISCONFIGURED_KEEP_S)
        # Noted long ago by a controller that is gone: expired.
        health.note_misconfigured(conn, "other", REASON, "cron:1:ab", now=now - 2 * health.MISCONFIGURED_KEEP_S)
    assert set(shown(db)) == {STORE}
    with db.tx() as conn:
        stack.beat(conn, "watch:2:cd", 0, now=now - 2 * health.STALE_AFTER_S)  # silent since: gone
    assert shown(db) == {}
    # A paused store stays shown as paused, without the expired note.
    pause_and_note(db, "other", at=now - 2 * health.MISCONFIGURED_KEEP_S)
    (p,) = shown(db).values()
    assert p["paused"] and p["misconfigured"] is None
    status = cli("stack", "status", "--json").json()
    assert [(s["store"], s["misconfigured"]) for s in status["other_store_problems"]] == [("other", None)]


def test_a_recent_note_of_a_finished_cron_run_is_still_shown(db):
    pause_and_note(db, "other", at=time.time() - 60)
    assert shown(db)["other"]["misconfigured"] == REASON


def test_a_watcher_that_uses_the_store_clears_a_note_another_controller_left(target):
    """A cron run without the secret variable noted the store misconfigured; the watcher, whose
    adapters for the store are cached (built before the note), clears it without a send."""
    from statusctl.delivery.controller import Controller

    with serve() as (hook, server):
        setup_db(target, {STORE: hook_url(server)}, secret=SECRET)
        fill(target, records=2, orders=2)
        db = open_database(target)

        async def scenario() -> dict[str, dict[str, object]]:
            controller = Controller(target, watch=True, poll=0.05)
            task = asyncio.create_task(controller.run())
            try:
                deadline = time.monotonic() + 30
                while len(hook.delivered()) < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert len(hook.delivered()) == 2
                with db.tx() as conn:
                    health.note_misconfigured(conn, STORE, REASON, "cron:1:ab", now=time.time())
                while shown(db) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return shown(db)
            finally:
                controller.stop()
                await task

        try:
            assert asyncio.run(scenario()) == {}
        finally:
            db.close()


def test_a_run_that_can_use_the_store_clears_a_note_with_nothing_queued_for_it(target):
    with serve() as (hook, server):
        setup_db(target, {STORE: hook_url(server)}, secret=SECRET)
        db = open_database(target)
        try:
            with db.tx() as conn:
                health.note_misconfigured(conn, STORE, REASON, "cron:1:ab", now=time.time())
            assert cli("stack", "status", "--check").code == 0, "nothing queued: no problem for --check"
            assert cli("stack", "run", "--json").json()["ok"] is True
            assert shown(db) == {}
        finally:
            db.close()


# -- a probe that went back without a send ------------------------------------------------


def half_open(db: Database, dest: str) -> float:
    """The destination's breaker open with its pause over: the next claim takes one probe. Returns when."""
    now = time.time()
    with db.tx() as conn:
        for _ in range(health.BREAKER_FAILURES):
            health.note_transport_failure(conn, dest, "timed out (ReadTimeout)", now=now - 120, schedule=(60.0,))
    return now


def probe(db: Database, now: float, owner: str = "A") -> stack.Claimed:
    with db.tx() as conn:
        (claimed,) = stack.claim(conn, owner, 10, 120.0, now=now)
    with db.reading() as conn:
        assert health.read(conn)[claimed.destination].paused(now), "the probe is out: nothing else is claimed"
    return claimed


def claimable_after(db: Database, now: float) -> list[str]:
    with db.reading() as conn:
        assert not health.read(conn)[STORE].paused(now), "the store stays paused for the probe's whole lease"
    with db.tx() as conn:
        return [c.uid for c in stack.claim(conn, "B", 10, 120.0, now=now)]


def test_a_probe_whose_lease_is_released_lets_the_store_be_probed_again_at_once(db, target):
    fill(target, records=3, orders=3)
    now = half_open(db, STORE)
    claimed = probe(db, now)
    with db.tx() as conn:
        stack.release(conn, "A", [claimed])
    assert claimable_after(db, now + 1) == [claimed.uid], "one new probe, the same head first"


def test_a_probe_that_waited_lets_the_store_be_probed_again_at_once(db, target):
    fill(target, records=3, orders=3)
    now = half_open(db, STORE)
    claimed = probe(db, now)
    with db.tx() as conn:
        stack.settle(conn, [stack.Outcome(claimed, "wait", reason=REASON)], "A", now=now, max_attempts=8,
                     schedule=(1.0,))
    assert claimable_after(db, now + 1) == [claimed.uid]
    with db.reading() as conn:
        assert health.read(conn)[STORE].opened == 1, "a wait says nothing about the cart: the breaker stays open"


# -- a one-shot run and a paused store -------------------------------------------------------


def test_a_one_shot_run_leaves_a_store_whose_probe_failed_instead_of_probing_it_for_ever(target):
    """With a retry schedule of 0.01 s, a paused store's pause ends at once again and again: a cron run
    used to probe a refusing port until it was killed (found by test_fuzz). It ends, reporting the store
    paused, with every record still on the stack and the failed probe counted as no attempt."""
    from .carts.fakeserver import free_port_refusing

    setup_db(target, {STORE: f"{free_port_refusing()}/hooks/status"}, settings={"StackRetrySchedule": "0.01"})
    fill(target, records=6, orders=6)
    ran = cli("stack", "run", "--json")
    report = ran.json()
    assert ran.code == 3 and report["ok"] is False and STORE in report["paused"], report
    db = open_database(target)
    try:
        with db.reading() as conn:
            rows = conn.execute("SELECT attempts FROM stack ORDER BY seq").fetchall()
            probes = conn.execute("SELECT COUNT(*) FROM stack_history WHERE reason LIKE ?",
                                  (f"%{stack.NOT_COUNTED}",)).fetchone()[0]
    finally:
        db.close()
    assert len(rows) == 6, "every record is still on the stack"
    assert sum(r[0] for r in rows) == health.BREAKER_FAILURES, "only the sends before the pause counted"
    assert probes == 1, "one probe, then the run left the store"
