"""Faults end to end: `statusctl stack run` against a signature-checking webhook receiver on 127.0.0.1.

Each fault comes with its expected outcome: delivered after a retry, retrying
(with Retry-After / rate-limit headers honoured), or failed at once with the
reason and an excerpt of the answer. Retry schedules are milliseconds.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .carts.fakeserver import Answer, FakeServer, free_port_refusing
from .stackhelpers import (
    OTHER_SECRET,
    PATH,
    SECRET,
    STORE,
    GarbageServer,
    Hook,
    cli,
    fill,
    history_rows,
    hook_url,
    serve,
    setup_db,
    stack_rows,
)


@pytest.fixture
def hooked() -> Iterator[tuple[Hook, FakeServer]]:
    with serve() as pair:
        yield pair


def prepare(db: Path, url: str, *, records: int = 1, orders: int = 1, settings: dict[str, str] | None = None,
            options: list[str] | None = None, secret: str = SECRET) -> dict[str, list[str]]:
    setup_db(db, {STORE: url}, settings=settings, options={STORE: options or []}, secret=secret)
    return fill(db, records=records, orders=orders)


def run(*extra: str) -> tuple[int, dict[str, Any]]:
    """`stack run --json`: the exit code and the one JSON document it printed."""
    r = cli("stack", "run", "--json", *extra)
    return r.code, r.json()


def listed() -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in cli("stack", "list", "--json").json()}


def outcomes(db: Path, uid: str) -> list[tuple[str, int | None]]:
    return [(h["outcome"], h["status"]) for h in history_rows(db, uid)]


# -- transient faults that clear: delivered in the same run ---------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Answer(500, "internal trouble"), "HTTP 500"),
        (Answer(502, "bad gateway"), "HTTP 502"),
        (Answer(408, "request timeout"), "HTTP 408"),
        (Answer(200, "half an answer that never ends", reset=True), "network error"),
    ],
    ids=["500", "502", "408", "reset-mid-answer"],
)
def test_a_transient_fault_is_retried_and_delivered_in_the_same_run(db_file, hooked, fault, reason):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=2, orders=1)
    first, second = orders["O00000"]
    hook.fail(first, fault)
    code, doc = run()
    assert code == 0, doc
    assert doc["stores"][STORE] == {"sent": 2, "retrying": 0, "failed": 0, "left": 0}
    assert doc["ok"] is True and doc["attempts"] == 3
    assert hook.counts == {first: 1, second: 1}
    tries = history_rows(db_file, first)
    assert [h["outcome"] for h in tries] == ["retry", "ok"]
    assert reason in tries[0]["reason"]
    if fault.status >= 400:
        assert tries[0]["status"] == fault.status
        assert fault.body in tries[0]["answer"]
    assert stack_rows(db_file) == []


def test_timeout_is_transient_and_the_record_goes_out_on_the_next_attempt(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), options=["timeout=0.3"])
    (uid,) = orders["O00000"]
    hook.fail(uid, Answer(204, delay=3.0))
    code, doc = run()
    assert code == 0, doc
    assert outcomes(db_file, uid) == [("retry", None), ("ok", 204)]
    assert "timed out" in history_rows(db_file, uid)[0]["reason"]
    assert hook.counts == {uid: 1}


def test_a_slow_answer_within_the_timeout_is_ok(db_file, hooked):
    hook, server = hooked
    hook.pause = 0.5
    orders = prepare(db_file, hook_url(server), options=["timeout=10"])
    (uid,) = orders["O00000"]
    code, doc = run()
    assert code == 0, doc
    (h,) = history_rows(db_file, uid)
    assert h["outcome"] == "ok" and h["attempt"] == 1
    assert h["duration_ms"] >= 450, "the recorded duration covers the slow answer"
    assert hook.counts == {uid: 1}


def test_a_2xx_with_a_malformed_body_is_ok_for_a_webhook(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server))
    (uid,) = orders["O00000"]
    hook.fail(uid, Answer(200, b"\x00\xff<<not json>>", {"Content-Type": "application/json"}))
    code, doc = run()
    assert code == 0 and doc["stores"][STORE]["sent"] == 1
    assert outcomes(db_file, uid) == [("ok", 200)]


# -- transient faults that do not clear -------------------------------------------------


def test_connection_refused_is_retried_until_the_attempts_run_out(db_file):
    orders = prepare(db_file, free_port_refusing() + PATH, records=2, orders=1,
                     settings={"StackMaxAttempts": "3"})
    first, second = orders["O00000"]
    code, doc = run()
    assert code == 3
    assert doc["stores"][STORE] == {"sent": 0, "retrying": 0, "failed": 1, "left": 2}
    assert doc["failed_on_stack"] == 1 and doc["ok"] is False
    assert [o for o, _ in outcomes(db_file, first)] == ["retry", "retry", "failed"]
    rec = listed()[first]
    assert (rec["state"], rec["attempts"]) == ("failed", 3)
    assert "network error" in rec["last_error"] and "ConnectError" in rec["last_error"]
    assert rec["last_error"].endswith("(gave up after 3 attempts)")
    assert listed()[second]["attempts"] == 0, "the order's later record was held back"


def test_an_answer_that_is_not_http_is_transient(db_file):
    with GarbageServer() as garbage:
        orders = prepare(db_file, garbage.url, settings={"StackMaxAttempts": "2"})
        (uid,) = orders["O00000"]
        code, doc = run()
    assert code == 3 and doc["stores"][STORE]["failed"] == 1
    assert garbage.connections == 2
    assert [o for o, _ in outcomes(db_file, uid)] == ["retry", "failed"]
    assert "network error" in listed()[uid]["last_error"]


def test_500_every_time_fails_the_record_after_StackMaxAttempts(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=2, orders=2, settings={"StackMaxAttempts": "4"})
    bad, good = orders["O00000"][0], orders["O00001"][0]
    hook.fail(bad, *[Answer(500, "still broken")] * 4)
    code, doc = run()
    assert code == 3
    assert doc["stores"][STORE] == {"sent": 1, "retrying": 0, "failed": 1, "left": 1}
    assert outcomes(db_file, bad) == [("retry", 500)] * 3 + [("failed", 500)]
    rec = listed()[bad]
    assert rec["last_error"] == "HTTP 500 Internal Server Error (gave up after 4 attempts)"
    assert rec["last_answer"] == "still broken"
    assert hook.counts == {good: 1}


@pytest.mark.parametrize("header", ["seconds", "http-date"])
def test_503_with_retry_after_waits_as_told(db_file, hooked, header):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=2, orders=2)
    held, other = orders["O00000"][0], orders["O00001"][0]
    value = "120" if header == "seconds" else email.utils.formatdate(time.time() + 120, usegmt=True)
    hook.fail(held, Answer(503, "maintenance", {"Retry-After": value}))
    code, doc = run()
    assert code == 3, "a record still undelivered at the end of a run is a delivery problem"
    assert doc["stores"][STORE] == {"sent": 1, "retrying": 1, "failed": 0, "left": 1}
    (attempt,) = history_rows(db_file, held)
    assert (attempt["outcome"], attempt["status"]) == ("retry", 503)
    rec = listed()[held]
    assert rec["state"] == "retrying" and rec["last_status"] == 503
    assert rec["next_attempt"] >= attempt["at"] + 110, "Retry-After was not honoured"
    assert hook.counts == {other: 1}
    # A second cron run before then sends nothing; once the operator retries it, it goes.
    code, doc = run()
    assert (code, doc["stores"]) == (0, {})
    assert cli("stack", "retry", held).code == 0
    code, doc = run()
    assert code == 0 and doc["stores"][STORE]["sent"] == 1
    assert hook.counts == {other: 1, held: 1}


def test_429_with_bigcommerce_reset_header_holds_the_store_for_that_long(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=2, orders=1)
    first, second = orders["O00000"]
    hook.fail(first, Answer(429, "slow down", {"X-Rate-Limit-Time-Reset-Ms": "300"}))
    code, doc = run()
    assert code == 0, doc
    assert outcomes(db_file, first) == [("retry", 429), ("ok", 204)]
    refused, accepted = hook.tries(first)
    assert accepted.arrived - refused.answered >= 0.3, "the next request came before the reset"
    assert hook.counts == {first: 1, second: 1}


def test_429_with_a_long_reset_holds_every_record_of_that_store(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=3, orders=3)
    uids = [orders[n][0] for n in sorted(orders)]
    hook.fail(uids[0], Answer(429, "slow down", {"X-Rate-Limit-Time-Reset-Ms": "90000"}))
    code, doc = run("--concurrency", "1")
    assert code == 3
    assert doc["stores"][STORE] == {"sent": 0, "retrying": 3, "failed": 0, "left": 3}
    assert len(server.requests) == 1, "records were sent to a store that asked for a pause"
    now = time.time()
    for uid in uids:
        assert listed()[uid]["next_attempt"] >= now + 80
    assert history_rows(db_file, uids[1])[0]["reason"] == "rate limited by the cart"


# -- permanent answers: failed at once ---------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        (Answer(404, "no such hook"), 404, "HTTP 404 Not Found"),
        (Answer(410, "hook deleted"), 410, "HTTP 410: the endpoint is gone"),
        (Answer(400, '{"error": "bad payload"}'), 400, "HTTP 400 Bad Request"),
        (Answer(422, "unprocessable"), 422, "HTTP 422"),
    ],
    ids=["404", "410", "400", "422"],
)
def test_a_permanent_answer_fails_the_record_at_once(db_file, hooked, answer, status, reason):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), records=4, orders=2)
    bad = orders["O00000"]
    good = orders["O00001"]
    hook.fail(bad[0], answer)
    code, doc = run()
    assert code == 3
    assert doc["stores"][STORE] == {"sent": 2, "retrying": 0, "failed": 1, "left": 2}
    assert outcomes(db_file, bad[0]) == [("failed", status)]
    rec = listed()[bad[0]]
    assert (rec["state"], rec["attempts"], rec["last_status"]) == ("failed", 1, status)
    assert rec["last_error"].startswith(reason)
    assert rec["last_answer"] == answer.body
    assert listed()[bad[1]]["attempts"] == 0, "a failed record holds back its order's later records"
    assert hook.counts == {good[0]: 1, good[1]: 1}


def test_a_redirect_is_not_followed(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server))
    (uid,) = orders["O00000"]
    hook.fail(uid, Answer(302, "moved", {"Location": server.base_url + "/elsewhere"}))
    code, doc = run()
    assert code == 3 and doc["stores"][STORE]["failed"] == 1
    assert [r.path for r in server.requests] == [PATH]
    rec = listed()[uid]
    assert rec["last_status"] == 302
    assert "redirect" in rec["last_error"] and "not followed" in rec["last_error"]
    assert "/elsewhere" in rec["last_error"]


def test_401_from_a_receiver_with_another_key_fails_and_the_secret_stays_secret(db_file, hooked):
    hook, server = hooked
    orders = prepare(db_file, hook_url(server), secret=OTHER_SECRET)
    (uid,) = orders["O00000"]
    r = cli("stack", "run", "--json")
    assert r.code == 3
    assert hook.refused == 1 and hook.counts == {}
    rec = listed()[uid]
    assert (rec["state"], rec["last_status"]) == ("failed", 401)
    assert "credentials refused" in rec["last_error"]
    assert "signature refused" in rec["last_answer"]
    shown = "".join([r.stdout, r.stderr, cli("stack", "history", "--json").stdout, cli("stack", "list", "--json").stdout,
                     str(history_rows(db_file)), str(stack_rows(db_file))])
    assert OTHER_SECRET.removeprefix("whsec_") not in shown


def test_a_store_missing_its_secret_variable_here_makes_its_records_wait_uncounted(db_file, hooked, monkeypatch):
    """Issue 13.5: a controller without a store's --secret-env variable (cron's bare environment) fails
    nothing: the records wait, no attempt is counted, `stack status` says the store is misconfigured
    and why, and a controller that has the variable delivers them and clears it."""
    hook, server = hooked
    setup_db(db_file, {})
    from statusctl.core.stores import add_store
    from statusctl.storage.db import Database

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    db = Database.open(db_file)
    add_store(db, STORE, "webhook", hook_url(server), [], ["secret=HOOK_SECRET"], [])
    db.close()
    orders = fill(db_file, records=2, orders=1)
    first, _ = orders["O00000"]
    monkeypatch.delenv("HOOK_SECRET")
    code, doc = run()
    assert code == 3 and doc["ok"] is False and doc["stores"][STORE]["failed"] == 0
    assert "HOOK_SECRET" in doc["misconfigured"][STORE]
    assert (listed()[first]["state"], listed()[first]["attempts"]) == ("queued", 0)
    assert history_rows(db_file) == [] and server.requests == []
    status = cli("stack", "status", "--json").json()
    (row,) = status["stores"]
    assert row["misconfigured"] and "HOOK_SECRET" in row["misconfigured"] and row["due"] == 2
    assert any("misconfigured" in p and "HOOK_SECRET" in p for p in status["problems"])
    assert cli("stack", "status", "--check").code == 3
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    code, doc = run()
    assert code == 0 and doc["sent"] == 2 and doc["misconfigured"] == {}
    status = cli("stack", "status", "--json").json()
    assert (status["stores"], status["other_store_problems"], status["problems"]) == ([], [], [])
