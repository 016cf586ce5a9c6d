"""Issue 12 and 11.5 at the core, with the clock passed in: fair claims across stores, per-store limits,
the circuit breaker, poison records, counters that answer `stack status`, history retention."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from statusctl.storage import claiming, health, retention, stack
from statusctl.storage.backends import Target, open_database
from statusctl.storage.db import Database

from .stackhelpers import fill, history_rows, query, setup_db, stack_rows

URL = "http://127.0.0.1:9/hooks/status"  # never contacted
LEASE = 120.0
SCHEDULE = (10.0, 60.0, 300.0)


@pytest.fixture
def db(target: Target) -> Iterator[Database]:
    setup_db(target, {"slow": URL, "fast": URL, "third": URL},
             options={"capped": ["max_in_flight=2"], "paced": ["rate=4"]})
    d = open_database(target)
    yield d
    d.close()


def claim(db: Database, owner: str = "A", limit: int = 100, *, now: float, **kw: object) -> list[stack.Claimed]:
    with db.tx() as conn:
        return stack.claim(conn, owner, limit, LEASE, now=now, **kw)  # type: ignore[arg-type]


def settle(db: Database, *outcomes: stack.Outcome, owner: str = "A", now: float) -> None:
    with db.tx() as conn:
        stack.settle(conn, list(outcomes), owner, now=now, max_attempts=8, schedule=SCHEDULE, rng=random.Random(3))


def per_store(claimed: list[stack.Claimed]) -> Counter[str]:
    return Counter(c.destination for c in claimed)


def add_store(target: Target, name: str, *options: str) -> None:
    from statusctl.core.stores import add_store as add

    from .stackhelpers import SECRET

    d = open_database(target)
    try:
        add(d, name, "webhook", URL, [f"secret={SECRET}"], [], list(options))
    finally:
        d.close()


def test_free_slots_are_shared_among_the_stores_with_due_records(db, target):
    fill(target, records=200, orders=200, store="slow", prefix="S")  # a backlog queued first
    fill(target, records=10, orders=10, store="fast", prefix="F")
    now = time.time() + 1
    first = claim(db, limit=8, now=now)
    assert per_store(first) == {"slow": 4, "fast": 4}, "a backlog queued first must not take every slot"
    # The fast store's sends end: the freed slots go to it first (it has the fewer records in flight).
    settle(db, *[stack.Outcome(c, "ok", status=204) for c in first if c.destination == "fast"], now=now)
    again = claim(db, limit=4, now=now)
    assert per_store(again) == {"fast": 4}
    # Several controllers share one count: B sees A's eight leases (4 and 4) and evens them out.
    fill(target, records=10, orders=10, store="third", prefix="T")
    b = claim(db, "B", limit=6, now=now)
    assert per_store(b) == {"third": 4, "slow": 1, "fast": 1}


def test_a_store_that_keeps_its_slots_busy_gets_no_more_than_its_share(db, target):
    fill(target, records=50, orders=50, store="slow", prefix="S")
    fill(target, records=50, orders=50, store="fast", prefix="F")
    now = time.time() + 1
    held = claim(db, limit=8, now=now)
    for _ in range(10):  # the fast store's sends end at once, the slow ones never
        done = [c for c in held if c.destination == "fast"]
        settle(db, *[stack.Outcome(c, "ok", status=204) for c in done], now=now)
        held = [c for c in held if c.destination != "fast"] + claim(db, limit=len(done), now=now)
        assert per_store(held)["slow"] == 4


def test_max_in_flight_counts_the_leases_of_every_controller(db, target):
    add_store(target, "capped", "max_in_flight=2")
    fill(target, records=10, orders=10, store="capped", prefix="C")
    now = time.time() + 1
    assert len(claim(db, "A", now=now)) == 2
    assert claim(db, "B", now=now) == [], "B must see A's two leases"
    assert soonest(db, now=now) == pytest.approx(claiming.BUSY_RETRY_S)
    # Once a lease runs out (A crashed) its slot is free again.
    assert len(claim(db, "B", now=now + LEASE + 1)) == 2


def test_rate_spaces_the_starts_of_a_store_s_sends_across_claims_and_controllers(db, target):
    add_store(target, "paced", "rate=4")
    fill(target, records=40, orders=40, store="paced", prefix="P")
    now = time.time() + 1
    a = claim(db, "A", now=now)
    b = claim(db, "B", now=now)
    starts = sorted(c.start_at for c in a + b)
    # Never more than one second's worth ahead, and 1/rate apart whoever claimed them.
    assert len(starts) == 5 and starts[0] == pytest.approx(now)
    assert all(later - sooner == pytest.approx(0.25) for sooner, later in zip(starts, starts[1:], strict=False))
    wait = soonest(db, now=now)
    assert wait is not None and 0 < wait <= 0.26


def soonest(db: Database, **kw: object) -> float | None:
    with db.reading() as conn:
        return claiming.soonest_due(conn, **kw)  # type: ignore[arg-type]


def breaker_state(db: Database, dest: str) -> health.Health:
    with db.reading() as conn:
        return health.read(conn)[dest]


def network_failures(db: Database, claimed: list[stack.Claimed], now: float) -> None:
    settle(db, *[stack.Outcome(c, "retry", reason="network error: ConnectError", transport=True) for c in claimed],
           now=now)


def test_consecutive_network_failures_pause_a_store_without_spending_attempts(db, target):
    fill(target, records=20, orders=20, store="slow", prefix="S")
    fill(target, records=4, orders=4, store="fast", prefix="F")
    now = time.time() + 1
    got = [c for c in claim(db, limit=12, now=now) if c.destination == "slow"]
    assert len(got) == 8
    network_failures(db, got, now)
    # The first BREAKER_FAILURES count as attempts; the rest failed once the store was paused.
    attempts = sorted(r["attempts"] for r in stack_rows(target) if r["destination"] == "slow")
    assert sum(attempts) == health.BREAKER_FAILURES
    h = breaker_state(db, "slow")
    # Paused for the schedule's first step; the sends still in flight then do not lengthen it.
    assert (h.opened, h.paused_until) == (1, pytest.approx(now + SCHEDULE[0]))
    assert "network failures in a row" in (h.reason or "")
    # Paused: nothing of it is claimed, the other store goes on; status says why.
    later = now + 1
    assert per_store(claim(db, limit=16, now=later)) == {}  # fast's 4 are in flight already
    status = {s["store"]: s for s in stack.status(db)["stores"]}
    assert status["slow"]["paused"] and "ConnectError" in status["slow"]["pause_reason"]
    assert not status["fast"]["paused"]
    # When the pause ends one probe goes out; it fails again: paused again for longer, no attempt spent.
    probe_at = float(h.paused_until or 0) + 0.001
    (probe,) = claim(db, "B", now=probe_at)
    assert claim(db, "C", now=probe_at) == [], "one probe at a time"
    before = {r["uid"]: r["attempts"] for r in stack_rows(target)}[probe.uid]
    settle(db, stack.Outcome(probe, "retry", reason="timed out (ConnectTimeout)", transport=True), owner="B",
           now=probe_at)
    assert {r["uid"]: r["attempts"] for r in stack_rows(target)}[probe.uid] == before
    h2 = breaker_state(db, "slow")
    assert h2.opened == 2 and (h2.paused_until or 0) - probe_at == pytest.approx(SCHEDULE[1])
    # The cart answers the next probe: the store is sending again.
    (probe,) = claim(db, "B", now=float(h2.paused_until or 0) + 0.001)
    settle(db, stack.Outcome(probe, "ok", status=204), owner="B", now=float(h2.paused_until or 0) + 0.01)
    assert breaker_state(db, "slow").opened == 0
    assert len(claim(db, "B", now=float(h2.paused_until or 0) + 1000)) >= 8


def test_any_answer_from_the_cart_resets_the_count_of_network_failures(db, target):
    fill(target, records=10, orders=10, store="slow", prefix="S")
    now = time.time() + 1
    got = claim(db, limit=8, now=now)
    network_failures(db, got[:4], now)
    settle(db, stack.Outcome(got[4], "retry", status=503, reason="HTTP 503"), now=now)
    network_failures(db, got[5:], now)
    assert breaker_state(db, "slow").opened == 0


def test_a_record_cut_short_again_and_again_is_failed_as_a_poison_record(db, target):
    (uids,) = fill(target, records=2, orders=1, store="slow", prefix="S").values()
    now = time.time() + 1
    for _ in range(claiming.POISON_CUTS):
        (c,) = claim(db, now=now)
        assert (c.uid, c.attempts) == (uids[0], 1), "a send cut short is no attempt"
        now += LEASE + 1  # the controller died mid-send: the lease runs out
    assert claim(db, now=now) == [], "the poison record is failed, and its order's next record waits behind it"
    r = stack_rows(target)[0]
    assert (r["state"], r["attempts"]) == ("failed", 0)
    assert f"cut short {claiming.POISON_CUTS} times in a row" in r["last_error"]
    assert [h["outcome"] for h in history_rows(target, uids[0])] == ["failed"]
    # An outcome in between starts the count again.
    stack.retry(db, [uids[0]], now=now)
    (c,) = claim(db, now=now)
    settle(db, stack.Outcome(c, "retry", status=503, reason="HTTP 503"), now=now)
    assert stack_rows(target)[0]["unsettled"] == 0


def brute_force_status(db: Database, now: float) -> dict[str, dict[str, int]]:
    """What `stack status` counts, computed from the stack rows alone (the pre-issue-12 query, portable)."""
    held_back = ("EXISTS (SELECT 1 FROM stack h WHERE h.order_id = s.order_id AND h.seq < s.seq "
                 "AND (h.state = 'failed' OR h.next_attempt > :now))")

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    out = {}
    for r in db.query(
        "SELECT destination, COUNT(*) AS queued, "
        + count(f"state = 'queued' AND next_attempt <= :now AND (lease_until IS NULL OR lease_until < :now) "
                f"AND NOT {held_back}") + " AS due, "
        + count(f"state = 'queued' AND {held_back}") + " AS held, "
        + count("state = 'queued' AND attempts > 0 AND next_attempt > :now") + " AS retrying, "
        + count("state = 'queued' AND lease_until >= :now") + " AS sending, "
        + count("state = 'failed'") + " AS failed FROM stack s GROUP BY destination", {"now": now}):
        out[r["destination"]] = {k: int(r[k] or 0) for k in ("queued", "due", "held", "retrying", "sending", "failed")}
    return out


def test_status_from_the_counters_equals_counting_every_row(db, target, monkeypatch):
    rng = random.Random(12)
    for store, prefix in (("slow", "S"), ("fast", "F")):
        fill(target, records=120, orders=30, store=store, prefix=prefix)
    now = time.time() + 1
    for _ in range(6):
        got = claim(db, rng.choice("ABC"), rng.randint(1, 20), now=now)
        picks = [c for c in got if rng.random() < 0.7]
        settle(db, *[stack.Outcome(c, rng.choice(["ok", "retry", "failed"]), status=500) for c in picks], now=now)
        if rng.random() < 0.3:
            stack.drop(db, [], failed=True, now=now)
    monkeypatch.setattr(time, "time", lambda: now + 5)  # SQLite's clock; PostgreSQL's is the server's
    data = stack.status(db)
    counted = {s["store"]: {k: s[k] for k in ("queued", "due", "held", "retrying", "sending", "failed")}
               for s in data["stores"]}
    assert counted == brute_force_status(db, data["now"])


def test_history_is_pruned_in_small_batches_to_stack_history_days(db, target):
    now = time.time()
    rows = [(now - 100 * 86400 + i, f"su_{i}", "slow", "slow", "1", 1, "ok") for i in range(1200)]
    rows += [(now - 10, "su_new", "slow", "slow", "1", 1, "ok")]
    with db.tx() as conn:
        conn.executemany("INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    assert retention.prune(db, 90, now=now, batches=2) == 2 * retention.BATCH, "one call removes a few batches"
    assert retention.prune(db, 90, now=now) == 1200 - 2 * retention.BATCH
    assert [h["uid"] for h in history_rows(target)] == ["su_new"]
    assert retention.reach(db) == (pytest.approx(now - 10), 90)
    assert query(target, "SELECT COUNT(*) AS n FROM stack_history")[0]["n"] == 1


@pytest.mark.parametrize(("option", "sentence"), [
    ("max_in_flight=0", "--option max_in_flight='0' must be a whole number from 1 to 256."),
    ("max_in_flight=two", "--option max_in_flight='two' must be a whole number from 1 to 256."),
    ("rate=nan", "--option rate='nan' must be requests per second from 0.001 to 10000."),
    ("rate=-1", "--option rate='-1' must be requests per second from 0.001 to 10000."),
])
def test_stores_add_refuses_a_limit_that_is_no_number_in_range(target, option, sentence):
    from .helpers import error_of

    setup_db(target, {})
    message = error_of("stores", "add", "x", "--cart", "webhook", "--url", URL, "--secret",
                       "secret=whsec_c3RhY2stdGVzdHMtc2lnbmluZy1rZXktMDEyMzQ1Njc4OQ==", "--option", option)
    assert message == f"Error: {sentence}\n"


def test_stores_show_and_carts_show_the_limits_with_their_defaults(target):
    from .helpers import cli_json

    setup_db(target, {"paced": URL}, options={"paced": ["rate=0.5"]})
    shown = cli_json("stores", "show", "paced")
    assert shown["limits"] == {"max_in_flight": 32, "rate": 0.5}
    from .stackhelpers import cli

    text = cli("stores", "show", "paced").stdout
    assert "32 (default)" in text and "0.5" in text
    carts = cli("carts").stdout
    assert "max_in_flight" in carts and "rate" in carts
    assert {"max_in_flight", "rate"} <= set(cli_json("carts")[0]["common_options"])


def test_stack_run_prunes_history_older_than_stack_history_days(target):
    from .stackhelpers import cli

    setup_db(target, {"slow": URL}, settings={"StackHistoryDays": "30"})
    now = time.time()
    query(target, "INSERT INTO stack_history (at, uid, store, destination, order_number, attempt, outcome) "
                   "VALUES (?, 'su_old', 'slow', 'slow', '1', 1, 'ok'), (?, 'su_new', 'slow', 'slow', '1', 1, 'ok')",
          (now - 31 * 86400, now - 29 * 86400))
    assert cli("stack", "run", "--json").code == 0
    assert [h["uid"] for h in history_rows(target)] == ["su_new"]


def test_stack_status_and_top_show_a_paused_and_a_misconfigured_store_and_check_fails(db, target):
    from .stackhelpers import cli

    fill(target, records=2, orders=2, store="slow", prefix="S")
    fill(target, records=1, orders=1, store="fast", prefix="F")
    now = time.time()
    with db.tx() as conn:
        for _ in range(health.BREAKER_FAILURES):
            health.note_transport_failure(conn, "slow", "timed out (ReadTimeout)", now=now, schedule=(60.0,))
        health.note_misconfigured(conn, "fast", "Store 'fast': environment variable FAST_KEY (secret 'secret') "
                                  "is not set.", "cron:1:ab", now=now)
    text = cli("stack", "status").stdout
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in text.splitlines() if "│" in line}
    assert (rows["slow"], rows["fast"]) == ("paused", "config")
    flat = " ".join(text.split())  # the problem lines wrap at the terminal's width
    assert "Problem: slow: paused (probed again in 5" in flat and "the last: timed out (ReadTimeout)" in flat
    assert "Problem: fast: misconfigured for controller cron:1:ab: Store 'fast': environment variable FAST_KEY" in flat
    check = cli("stack", "status", "--check")
    assert check.code == 3 and "slow: paused" in check.stderr and "fast: misconfigured" in check.stderr
    top = cli("stack", "top", "--once").stdout
    assert "paused" in top and "FAST_KEY" in top
    # An answer from the cart (any controller) clears both.
    with db.tx() as conn:
        health.note_answer(conn, "slow")
        health.note_answer(conn, "fast")
    assert cli("stack", "status", "--check").code == 0


def test_a_stack_run_that_leaves_records_of_a_paused_store_says_so_and_exits_3(db, target):
    from .stackhelpers import cli

    fill(target, records=2, orders=2, store="slow", prefix="S")
    with db.tx() as conn:
        for _ in range(health.BREAKER_FAILURES):
            health.note_transport_failure(conn, "slow", "timed out (ReadTimeout)", now=time.time(), schedule=(60.0,))
    ran = cli("stack", "run", "--json")
    assert ran.code == 3
    doc = ran.json()
    assert doc["ok"] is False and "timed out (ReadTimeout)" in doc["paused"]["slow"] and doc["sent"] == 0
    assert len(stack_rows(target)) == 2


def test_a_paced_client_spaces_both_ways_of_sending_and_nothing_else():
    """Adapters send with `request` or with `send` of a built request (the bounded read): both wait."""
    import asyncio

    from statusctl.delivery.pacing import PacedClient, Pacer

    class Client:
        def __init__(self) -> None:
            self.at: list[float] = []

        async def request(self, *args: object, **kwargs: object) -> str:
            self.at.append(time.monotonic())
            return "r"

        async def send(self, *args: object, **kwargs: object) -> str:
            self.at.append(time.monotonic())
            return "s"

        def build_request(self, method: str, url: str) -> tuple[str, str]:
            return method, url

    async def go() -> tuple[Client, list[object]]:
        inner = Client()
        paced = PacedClient(inner, Pacer(20.0))
        got: list[object] = [paced.build_request("GET", "/x")]
        for _ in range(3):
            got += [await paced.request("GET", "/x"), await paced.send(("GET", "/x"))]
        return inner, got

    inner, got = asyncio.run(go())
    assert got == [("GET", "/x"), "r", "s", "r", "s", "r", "s"]
    gaps = [b - a for a, b in zip(inner.at, inner.at[1:], strict=False)]
    assert len(gaps) == 5 and min(gaps) >= 0.045, gaps  # 1/20 s apart, less timer slack


def test_a_paused_store_with_nothing_queued_is_shown_but_fails_no_check(db, target):
    from .stackhelpers import cli

    with db.tx() as conn:
        for _ in range(health.BREAKER_FAILURES):
            health.note_transport_failure(conn, "slow", "timed out (ReadTimeout)", now=time.time(), schedule=(60.0,))
    status = cli("stack", "status", "--json").json()
    assert status["problems"] == [] and [p["store"] for p in status["other_store_problems"]] == ["slow"]
    assert "Nothing queued for it: slow: paused" in " ".join(cli("stack", "status").stdout.split())
    assert cli("stack", "status", "--check").code == 0
