"""The stack's core on both backends (a SQLite file, a PostgreSQL database), with the clock passed in: claim, lease, settle, release, views."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from statusctl.domain.errors import InputError, NotFound
from statusctl.storage import stack
from statusctl.storage.backends import Target, open_database
from statusctl.storage.db import Database

from .stackhelpers import STORE, db_errors, fill, history_rows, opened, query, setup_db, stack_rows

URL = "http://127.0.0.1:9/hooks/status"  # never contacted by these tests
LEASE = 120.0
SCHEDULE = (10.0, 60.0, 300.0)


@pytest.fixture
def db(target: Target) -> Iterator[Database]:
    yield from opened(target, {STORE: URL, "other": URL})


def later() -> float:
    """A `now` at which every record queued so far is due."""
    return time.time() + 1.0


def claim(db: Database, owner: str = "A", limit: int = 100, *, now: float, **kw: object) -> list[stack.Claimed]:
    """One claim in its own BEGIN IMMEDIATE transaction, as the controller does."""
    with db.tx() as conn:
        return stack.claim(conn, owner, limit, LEASE, now=now, **kw)  # type: ignore[arg-type]


def settle(db: Database, *outcomes: stack.Outcome, owner: str = "A", now: float, max_attempts: int = 8,
           rng: random.Random | None = None) -> list[stack.Outcome]:
    with db.tx() as conn:
        return stack.settle(conn, list(outcomes), owner, now=now, max_attempts=max_attempts, schedule=SCHEDULE,
                            rng=rng or random.Random(7))


def release(db: Database, owner: str, claims: list[stack.Claimed]) -> None:
    with db.tx() as conn:
        stack.release(conn, owner, claims)


def soonest(db: Database, **kw: object) -> float | None:
    with db.reading() as conn:
        return stack.soonest_due(conn, **kw)  # type: ignore[arg-type]


def row(target: Target, uid: str) -> dict[str, object]:
    rows = [r for r in stack_rows(target) if r["uid"] == uid]
    assert rows, f"{uid} is not on the stack"
    return rows[0]


# -- claiming -------------------------------------------------------------------


def test_claim_takes_the_head_of_each_order_with_a_lease(db, target):
    orders = fill(target, records=9, orders=3)
    now = later()
    got = claim(db, now=now)
    assert sorted(c.uid for c in got) == sorted(uids[0] for uids in orders.values())
    assert all(c.attempts == 1 and c.destination == STORE for c in got)
    assert [c.seq for c in got] == sorted(c.seq for c in got)
    for c in got:
        r = row(target, c.uid)
        # The claim counts no attempt (only an outcome does); it counts a claim without an outcome.
        assert (r["lease_owner"], r["lease_until"], r["attempts"], r["unsettled"]) == ("A", now + LEASE, 0, 1)
        assert c.payload["order"]["number"] == c.order_number


def test_a_leased_record_is_claimed_again_only_after_its_lease_ran_out(db, target):
    orders = fill(target, records=4, orders=2)
    now = later()
    first = claim(db, "A", now=now)
    assert len(first) == 2
    # While leased, neither the record nor its order's later records go to anyone.
    assert claim(db, "B", now=now + LEASE - 0.001) == []
    assert claim(db, "B", now=now + LEASE) == []  # lease_until itself still belongs to A
    again = claim(db, "B", now=now + LEASE + 0.001)
    assert sorted(c.uid for c in again) == sorted(u[0] for u in orders.values())
    # A's claims ended without an outcome (a crash): they count as no attempt, only as cut claims.
    assert all(c.attempts == 1 for c in again)
    assert {row(target, c.uid)["unsettled"] for c in again} == {2}
    assert {row(target, c.uid)["lease_owner"] for c in again} == {"B"}


def test_two_claimers_split_the_due_orders(db, target):
    fill(target, records=6, orders=3)
    now = later()
    a = claim(db, "A", 2, now=now)
    b = claim(db, "B", 5, now=now)
    assert len(a) == 2 and len(b) == 1
    assert {c.order_number for c in a}.isdisjoint({c.order_number for c in b})
    assert claim(db, "C", now=now) == []


def test_claim_honours_limit_store_and_skipped_destinations(db, target):
    mine = fill(target, records=3, orders=3, store=STORE, prefix="H")
    other = fill(target, records=2, orders=2, store="other", prefix="X")
    now = later()
    assert [c.order_number for c in claim(db, limit=1, now=now, stores=["other"])] == ["X00000"]
    assert [c.uid for c in claim(db, now=now, skip_destinations=[STORE])] == [other["X00001"][0]]
    assert sorted(c.uid for c in claim(db, now=now)) == sorted(uids[0] for uids in mine.values())


def test_a_record_is_not_claimed_before_its_next_attempt(db, target):
    orders = fill(target, records=1, orders=1)
    uid = orders["O00000"][0]
    queued = float(row(target, uid)["next_attempt"])  # type: ignore[arg-type]
    assert claim(db, now=queued - 0.5) == []
    assert [c.uid for c in claim(db, now=queued)] == [uid]


# -- settling -------------------------------------------------------------------


def test_ok_deletes_the_record_and_writes_history_then_the_next_one_is_due(db, target):
    orders = fill(target, records=2, orders=1)
    first, second = orders["O00000"]
    now = later()
    (c,) = claim(db, now=now)
    settle(db, stack.Outcome(c, "ok", status=204, duration_ms=12), now=now + 1)
    assert [r["uid"] for r in stack_rows(target)] == [second]
    (h,) = history_rows(target, first)
    assert (h["outcome"], h["status"], h["attempt"], h["controller"], h["duration_ms"], h["at"]) == (
        "ok", 204, 1, "A", 12, now + 1)
    assert (h["store"], h["destination"], h["order_number"]) == (STORE, STORE, "O00000")
    assert [c.uid for c in claim(db, now=now + 1)] == [second]


def test_ok_and_its_history_row_are_one_transaction(db, target):
    """A history row that cannot be written takes the delete back with it (one transaction)."""
    orders = fill(target, records=1, orders=1)
    now = later()
    (c,) = claim(db, now=now)
    broken = stack.Outcome(c, "ok", status=object())  # type: ignore[arg-type]  # the history insert fails
    with pytest.raises(db_errors()):
        settle(db, broken, now=now)
    assert [r["uid"] for r in stack_rows(target)] == orders["O00000"], "the delete was not rolled back"
    assert history_rows(target) == []
    assert db.dialect != "sqlite" or not db.conn.in_transaction
    assert [c.uid for c in claim(db, now=now + LEASE + 1)] == orders["O00000"]


def test_retry_waits_per_schedule_with_jitter_and_gives_the_lease_back(db, target):
    orders = fill(target, records=2, orders=1)
    uid = orders["O00000"][0]
    now = later()
    expected = [10.0, 60.0, 300.0, 300.0]  # the last step repeats
    for attempt, base in enumerate(expected, start=1):
        (c,) = claim(db, now=now)
        assert (c.uid, c.attempts) == (uid, attempt)
        settle(db, stack.Outcome(c, "retry", status=503, reason="HTTP 503", answer="busy"), now=now)
        r = row(target, uid)
        wait = float(r["next_attempt"]) - now  # type: ignore[arg-type]
        assert 0.8 * base <= wait <= 1.2 * base
        assert (r["state"], r["lease_owner"], r["lease_until"]) == ("queued", None, None)
        assert (r["last_status"], r["last_error"], r["last_answer"]) == (503, "HTTP 503", "busy")
        # Its order waits with it: the second record is not claimable meanwhile.
        assert claim(db, now=now + 0.79 * base) == []
        now = float(r["next_attempt"])  # type: ignore[arg-type]
    assert [h["outcome"] for h in history_rows(target, uid)] == ["retry"] * 4


def test_backoff_jitters_and_repeats_the_last_step():
    rng = random.Random(1)
    values = [stack.backoff(1, SCHEDULE, rng) for _ in range(50)]
    assert all(8.0 <= v <= 12.0 for v in values)
    assert len(set(values)) > 1, "no jitter"
    assert all(240.0 <= stack.backoff(n, SCHEDULE, rng) <= 360.0 for n in (3, 4, 9, 50))
    assert stack.backoff(1, (), rng) == 0.0


@pytest.mark.parametrize(("retry_after", "low", "high"), [(500.0, 500.0, 500.0), (1.0, 8.0, 12.0)])
def test_retry_after_wins_when_longer_than_the_backoff(db, target, retry_after, low, high):
    orders = fill(target, records=1, orders=1)
    now = later()
    (c,) = claim(db, now=now)
    settle(db, stack.Outcome(c, "retry", status=429, retry_after=retry_after), now=now)
    wait = float(row(target, orders["O00000"][0])["next_attempt"]) - now  # type: ignore[arg-type]
    assert low <= wait <= high


def test_attempts_exhausted_fail_the_record_with_the_reason(db, target):
    orders = fill(target, records=2, orders=1)
    uid = orders["O00000"][0]
    now = later()
    kinds = []
    for _ in range(3):
        (c,) = claim(db, now=now)
        outcome = stack.Outcome(c, "retry", status=500, reason="HTTP 500", answer="oops")
        (written,) = settle(db, outcome, now=now, max_attempts=3)
        assert (outcome.kind, outcome.reason) == ("retry", "HTTP 500"), "settle changed its input"
        kinds.append(written.kind)
        now += 400
    assert kinds == ["retry", "retry", "failed"], "the caller's tally must see the give-up as a failure"
    r = row(target, uid)
    assert (r["state"], r["attempts"], r["last_status"], r["lease_owner"]) == ("failed", 3, 500, None)
    assert r["last_error"] == "HTTP 500 (gave up after 3 attempts)"
    assert [h["outcome"] for h in history_rows(target, uid)] == ["retry", "retry", "failed"]
    assert claim(db, now=now + 10**6) == [], "a failed record holds back its order for good"


def test_permanent_failure_keeps_the_reason_and_an_excerpt_of_the_answer(db, target):
    orders = fill(target, records=1, orders=1)
    uid = orders["O00000"][0]
    now = later()
    (c,) = claim(db, now=now)
    answer = "x" * 5000
    settle(db, stack.Outcome(c, "failed", status=404, reason="HTTP 404 Not Found", answer=answer), now=now)
    r = row(target, uid)
    assert (r["state"], r["last_status"], r["last_error"]) == ("failed", 404, "HTTP 404 Not Found")
    assert r["last_answer"] == "x" * stack.EXCERPT
    (h,) = history_rows(target, uid)
    assert (h["outcome"], h["answer"]) == ("failed", "x" * stack.EXCERPT)


def test_a_waiting_or_failed_record_holds_back_only_its_own_order(db, target):
    orders = fill(target, records=9, orders=3)
    a, b, c = (orders[f"O0000{i}"] for i in range(3))
    now = later()
    heads = {x.order_number: x for x in claim(db, now=now)}
    settle(db, stack.Outcome(heads["O00000"], "failed", status=404),
           stack.Outcome(heads["O00001"], "retry", status=503),
           stack.Outcome(heads["O00002"], "ok", status=204), now=now)
    sent = []
    for _ in range(5):
        got = claim(db, now=now)
        sent += [x.uid for x in got]
        settle(db, *(stack.Outcome(x, "ok") for x in got), now=now)
    assert sent == c[1:], "order C went on; A (failed) and B (retrying) held back"
    # B's retry comes due: B resumes in order; A stays held until the operator acts.
    now += 20
    resumed = []
    for _ in range(5):
        got = claim(db, now=now)
        resumed += [x.uid for x in got]
        settle(db, *(stack.Outcome(x, "ok") for x in got), now=now)
    assert resumed == b
    assert [r["uid"] for r in stack_rows(target)] == a
    assert stack.retry(db, [], failed=True) == 1
    assert [x.uid for x in claim(db, now=time.time() + 1)] == [a[0]]


def test_settling_after_the_lease_was_lost_does_not_touch_the_new_owner(db, target):
    orders = fill(target, records=1, orders=1)
    uid = orders["O00000"][0]
    now = later()
    (mine,) = claim(db, "A", now=now)
    (theirs,) = claim(db, "B", now=now + LEASE + 1)
    for kind in ("retry", "failed"):
        settle(db, stack.Outcome(mine, kind, status=500), owner="A", now=now + LEASE + 2)
        r = row(target, uid)
        assert (r["state"], r["lease_owner"], r["lease_until"]) == ("queued", "B", now + 2 * LEASE + 1)
    # An OK from the old owner is recorded, but the record stays with B, who is sending it:
    # deleting it would let the order's next record go out while this one is still in flight.
    settle(db, stack.Outcome(mine, "ok", status=200), owner="A", now=now + LEASE + 3)
    r = row(target, uid)
    assert (r["state"], r["lease_owner"]) == ("queued", "B")
    settle(db, stack.Outcome(theirs, "ok", status=200), owner="B", now=now + LEASE + 4)
    assert stack_rows(target) == []
    assert [h["controller"] for h in history_rows(target, uid) if h["outcome"] == "ok"] == ["A", "B"]


def test_an_ok_after_the_lease_ran_out_removes_the_record_when_nobody_took_it_over(db, target):
    orders = fill(target, records=2, orders=1)
    first, second = orders["O00000"]
    now = later()
    (mine,) = claim(db, "A", now=now)
    settle(db, stack.Outcome(mine, "ok", status=200), owner="A", now=now + LEASE + 1)
    assert [r["uid"] for r in stack_rows(target)] == [second]


@pytest.mark.parametrize("later_kind", ["retry", "failed"])
@pytest.mark.parametrize("ok_first", [True, False])
def test_one_settle_of_a_delivery_and_a_later_claims_failure_ends_delivered(db, target, later_kind, ok_first):
    """A controller's send outlived its lease and it claimed the record again; both sends end in one settle,
    the first delivered: whatever their order, the deletes are judged after the other outcomes, so the
    record is gone (no send of it is left) and both attempts are in the history (found by the model test)."""
    orders = fill(target, records=2, orders=1)
    first, second = orders["O00000"]
    now = later()
    (old,) = claim(db, "A", now=now)
    (new,) = claim(db, "A", now=now + LEASE + 1)
    assert (old.uid, new.uid, new.claims) == (first, first, old.claims + 1)
    delivered, refused = stack.Outcome(old, "ok", status=200), stack.Outcome(new, later_kind, status=503)
    written = settle(db, *((delivered, refused) if ok_first else (refused, delivered)), owner="A",
                     now=now + LEASE + 2)
    assert sorted(o.kind for o in written) == sorted(["ok", later_kind])
    assert [r["uid"] for r in stack_rows(target)] == [second]
    assert sorted(h["outcome"] for h in history_rows(target, first)) == sorted(["ok", later_kind])


def test_release_gives_the_lease_back_without_counting_the_attempt(db, target):
    orders = fill(target, records=2, orders=2)
    now = later()
    got = claim(db, "A", now=now)
    release(db, "B", got)  # not B's to give
    assert claim(db, "C", now=now) == []
    release(db, "A", got)
    assert [(r["lease_owner"], r["lease_until"], r["attempts"]) for r in stack_rows(target)] == [(None, None, 0)] * 2
    again = claim(db, "C", now=now)
    assert sorted(c.uid for c in again) == sorted(u[0] for u in orders.values())
    assert all(c.attempts == 1 for c in again)
    assert history_rows(target) == []
    release(db, "C", [])


def test_releasing_a_claim_whose_lease_ran_out_leaves_our_later_claim_alone(db, target):
    """A controller stalled past its lease and claimed the record again: giving back the first claim
    must not end the second, which is being sent (found by the model test)."""
    orders = fill(target, records=2, orders=1)
    first, _ = orders["O00000"]
    now = later()
    (old,) = claim(db, "A", now=now)
    (new,) = claim(db, "A", now=now + LEASE + 1)
    release(db, "A", [old])
    r = row(target, first)
    assert (r["lease_owner"], r["lease_until"], r["claims"]) == ("A", now + 2 * LEASE + 1, new.claims)
    assert claim(db, "B", now=now + LEASE + 2) == [], "B would send the record A is sending"
    release(db, "A", [new, old])  # both at once, in either order: the later one is given back
    assert [c.uid for c in claim(db, "B", now=now + LEASE + 3)] == [first]


def test_soonest_due(db, target):
    now = later()
    assert soonest(db, now=now) is None
    fill(target, records=2, orders=1)
    assert soonest(db, now=later()) == 0.0
    now = later()
    (c,) = claim(db, now=now)
    assert soonest(db, now=now) is None, "a leased head is not due, nor what it holds back"
    settle(db, stack.Outcome(c, "retry"), now=now)
    wait = soonest(db, now=now)
    assert wait is not None and 8.0 <= wait <= 12.0
    assert soonest(db, now=now, stores=["other"]) is None


def test_threads_claiming_at_once_send_each_record_once_and_in_order(target):
    setup_db(target, {STORE: URL})
    orders = fill(target, records=400, orders=40)
    claims: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def controller(owner: str) -> None:
        d = open_database(target)
        try:
            idle = 0
            while idle < 3:
                with d.tx() as conn:
                    got = stack.claim(conn, owner, 5, LEASE, now=time.time())
                with lock:
                    claims.extend((owner, c.uid) for c in got)
                with d.tx() as conn:
                    stack.settle(conn, [stack.Outcome(c, "ok", status=204) for c in got], owner, now=time.time(),
                                 max_attempts=8, schedule=SCHEDULE)
                idle = 0 if got else idle + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            d.close()

    threads = [threading.Thread(target=controller, args=(f"T{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    uids = [u for _, u in claims]
    assert sorted(uids) == sorted(u for us in orders.values() for u in us)
    assert len(set(uids)) == len(uids), "a record was claimed twice"
    assert stack_rows(target) == []
    ok_order = [h["uid"] for h in history_rows(target)]
    for number, queued in orders.items():
        assert [u for u in ok_order if u in set(queued)] == queued, f"order {number} went out of order"


# -- the operator's views and actions --------------------------------------------


def test_list_records_shows_state_attempts_and_last_error(db, target):
    orders = fill(target, records=8, orders=4)
    now = time.time()
    heads = {c.order_number: c for c in claim(db, now=now)}
    settle(db, stack.Outcome(heads["O00000"], "failed", status=404, reason="HTTP 404", answer="nope"),
           stack.Outcome(heads["O00001"], "retry", status=503, reason="HTTP 503"), now=now)
    release(db, "A", [heads["O00003"]])
    # O00002's head stays leased: "sending".
    by_uid = {r["id"]: r for r in stack.list_records(db)}
    assert by_uid[orders["O00000"][0]]["state"] == "failed"
    assert by_uid[orders["O00001"][0]]["state"] == "retrying"
    assert by_uid[orders["O00002"][0]]["state"] == "sending"
    assert by_uid[orders["O00003"][0]]["state"] == "queued"
    r = by_uid[orders["O00000"][0]]
    assert (r["attempts"], r["last_status"], r["last_error"], r["last_answer"]) == (1, 404, "HTTP 404", "nope")
    assert r["events"] == ["order-approved"] and r["order"] == "O00000" and r["destination"] == STORE
    assert [r["id"] for r in stack.list_records(db, failed=True)] == [orders["O00000"][0]]
    assert [r["id"] for r in stack.list_records(db, order="O00001")] == orders["O00001"]
    assert stack.list_records(db, store="other") == []


def test_status_counts_per_store_and_marks_stale_controllers(db, target):
    orders = fill(target, records=6, orders=3)
    fill(target, records=1, orders=1, store="other", prefix="X")
    now = time.time()
    heads = {c.order_number: c for c in claim(db, now=now, stores=[STORE])}
    settle(db, stack.Outcome(heads["O00000"], "failed", status=404),
           stack.Outcome(heads["O00001"], "retry", status=503), now=now)
    query(target, "UPDATE stack SET queued = queued - 500 WHERE uid = ?", (orders["O00000"][0],))
    query(target, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES "
                   "('old', 11, 'h1', 1, ?, 'watch')", (now - 300,))
    query(target, "INSERT INTO controllers (id, pid, host, started, heartbeat, mode) VALUES "
                   "('new', 22, 'h2', 2, ?, 'run')", (now,))
    data = stack.status(db)
    stores = {s["store"]: s for s in data["stores"]}
    hook = stores[STORE]
    assert (hook["queued"], hook["failed"], hook["retrying"], hook["sending"]) == (6, 1, 1, 1)
    assert hook["oldest_age"] >= 500
    assert stores["other"]["queued"] == stores["other"]["due"] == 1
    alive = {c["pid"]: c["alive"] for c in data["controllers"]}
    assert alive == {11: False, 22: True}
    assert {c["host"] for c in data["controllers"]} == {"h1", "h2"}


def test_retry_and_drop(db, target):
    orders = fill(target, records=3, orders=3)
    now = time.time()
    for c in claim(db, now=now):
        settle(db, stack.Outcome(c, "failed", status=410, reason="gone"), now=now)
    a, b, c = (orders[n][0] for n in sorted(orders))
    with pytest.raises(InputError):
        stack.retry(db, [])
    with pytest.raises(NotFound):
        stack.retry(db, ["su_nope"])
    assert stack.retry(db, [a]) == 1
    r = row(target, a)
    assert (r["state"], r["attempts"]) == ("queued", 0) and float(r["next_attempt"]) <= time.time()  # type: ignore[arg-type]
    assert stack.count_selected(db, [], failed=True) == 2
    assert stack.drop(db, [b], who="tester") == 1
    assert stack.drop(db, [], failed=True) == 1
    assert [x["uid"] for x in stack_rows(target)] == [a]
    dropped = [h for h in history_rows(target) if h["outcome"] == "dropped"]
    assert sorted(h["uid"] for h in dropped) == sorted([b, c])
    assert {h["controller"] for h in dropped} == {"tester", "operator"}


def test_retry_by_id_leaves_a_record_that_is_being_sent_alone(db, target):
    orders = fill(target, records=1, orders=1)
    uid = orders["O00000"][0]
    (c,) = claim(db, "A", now=time.time())
    with pytest.raises(InputError, match=r"is being sent right now; retry it when that send is over \(its lease"):
        stack.retry(db, [uid])
    r = row(target, uid)
    assert r["lease_owner"] == "A", "retry released a live lease: a second controller could send it at once"
    assert claim(db, "B", now=time.time()) == []
    settle(db, stack.Outcome(c, "ok"), now=time.time())
    assert stack_rows(target) == []


def test_history_filters_by_order_and_time(db, target):
    fill(target, records=2, orders=2)
    now = time.time()
    got = {c.order_number: c for c in claim(db, now=now)}
    settle(db, stack.Outcome(got["O00000"], "ok"), now=now - 3600)
    settle(db, stack.Outcome(got["O00001"], "ok"), now=now)
    assert [h["order_number"] for h in stack.history(db)] == ["O00000", "O00001"]
    assert [h["order_number"] for h in stack.history(db, order="O00001")] == ["O00001"]
    assert [h["order_number"] for h in stack.history(db, since=now - 60)] == ["O00001"]
    assert "id" not in stack.history(db)[0]


def test_renew_extends_only_our_own_leases(db, target):
    orders = fill(target, records=2, orders=2)
    now = later()
    mine = claim(db, "A", 1, now=now)
    theirs = claim(db, "B", 1, now=now)
    with db.tx() as conn:
        stack.renew(conn, "A", [c.seq for c in mine + theirs], now + 500)
    leases = {r["uid"]: (r["lease_owner"], r["lease_until"]) for r in stack_rows(target)}
    assert leases[mine[0].uid] == ("A", now + 500)
    assert leases[theirs[0].uid] == ("B", now + LEASE)
    # Past the original lease only B's record comes back; A's renewed one is still A's.
    assert [c.uid for c in claim(db, "C", now=now + LEASE + 1)] == [theirs[0].uid]
    assert sorted(orders) == ["O00000", "O00001"]
