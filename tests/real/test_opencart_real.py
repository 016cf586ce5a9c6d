"""statusctl against a real OpenCart 3.0.5.0: what arrives in its own tables and the customer's mailbox.

Each test makes its own orders in OpenCart (SQL, as checkout leaves them) and
its own statusctl database, then runs the CLI as a user does; it reads
`oc_order`, `oc_order_history` and the captured e-mails.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from ..helpers import cli
from ..stackhelpers import finish, spawn
from .carts import OpenCart
from .flow import (
    history,
    import_order,
    kill_mid_send,
    records,
    run,
    run_with_database_down,
    start_shop,
    store_test,
)

pytestmark = pytest.mark.real

PENDING, PROCESSING, SHIPPED, CANCELED = 1, 2, 3, 7
TIMEOUT_S, LEASE_S = 5, 6  # a send to this OpenCart takes well under a second
_numbers = itertools.count(1)


def add_store(cart: OpenCart, name: str = "oc", *, key: str = OpenCart.KEY, url: str | None = None,
              options: tuple[str, ...] | list[str] = ()) -> None:
    extra = [arg for option in options for arg in ("--option", option)]
    cli("stores", "add", name, "--cart", "opencart", "--url", url or cart.url, "--secret",
        f"username={cart.USERNAME}", "--secret", f"key={key}", "--option", f"timeout={TIMEOUT_S}", *extra)


def new_order(cart: OpenCart, folder: Path, status: int, *, store: str = "oc",
              items: tuple[tuple[str, int], ...] = (("MUG-1", 2),)) -> tuple[str, int, str]:
    """An OpenCart order at `status`, imported into statusctl: (number, OpenCart order_id, e-mail)."""
    n = next(_numbers)
    email_to = f"oc-customer-{n}@example.test"
    order_id = cart.add_order(status, email_to)
    number = f"OC-{order_id}"
    import_order(folder, number, order_id, email_to, store, items)
    return number, order_id, email_to


def test_stores_test_logs_in_and_names_each_refusal(opencart: OpenCart) -> None:
    start_shop()
    add_store(opencart)
    assert store_test("oc", ok=True).startswith("OpenCart accepted the API login")
    add_store(opencart, "wrongkey", key="X" * 256)
    out = store_test("wrongkey", ok=False)
    assert "wrong API username or key" in out and "X" * 40 not in out
    opencart.sql("DELETE FROM oc_api_ip")
    try:
        out = store_test("oc", ok=False)
    finally:
        opencart.sql("INSERT INTO oc_api_ip (api_id, ip) SELECT api_id, '127.0.0.1' FROM oc_api")
    assert "Your IP 127.0.0.1 is not allowed" in out and "System > Users > API" in out
    assert "Incorrect API Key" not in out


def test_approve_ship_in_two_packages_and_cancel(opencart: OpenCart, tmp_path: Path) -> None:
    start_shop()
    add_store(opencart)
    number, oid, to = new_order(opencart, tmp_path, PENDING, items=(("MUG-1", 2), ("TEE-L", 1)))
    cli("fire", "order-approved", number)
    cli("ship", number, "--item", "MUG-1", "--tracking", "1Z999AA10123456784", "--carrier", "UPS",
        "--note", 'Mugs first, "fragile" & boxed')
    cli("ship", number, "--tracking", "9400111899223197428490", "--carrier", "USPS")
    run()
    assert records(number) == []
    assert opencart.status(oid) == SHIPPED
    entries = opencart.history(oid)
    assert [(e["status"], e["notify"]) for e in entries] == [(PROCESSING, 1), (PROCESSING, 1), (SHIPPED, 1)]
    assert entries[0]["comment"] == ""
    # OpenCart HTML-escapes what it stores; the partial shipment kept the status and carried its tracking
    assert entries[1]["comment"] == "Mugs first, &quot;fragile&quot; &amp; boxed\nTracking: UPS 1Z999AA10123456784"
    assert entries[2]["comment"] == "Tracking: USPS 9400111899223197428490"
    mails = opencart.mails(to)
    assert len(mails) == 3 and "1Z999AA10123456784" in mails[1] and "9400111899223197428490" in mails[2]
    assert {h["status"] for h in history(number) if h["outcome"] == "ok"} == {200}

    other, other_id, _ = new_order(opencart, tmp_path, PROCESSING)
    cli("cancel", other)
    run()
    assert opencart.status(other_id) == CANCELED
    assert [e["status"] for e in opencart.history(other_id)] == [CANCELED]


@pytest.mark.parametrize("already", [PROCESSING, SHIPPED], ids=["processing", "shipped"])
def test_an_order_already_at_the_status_gets_the_tracking_once(opencart: OpenCart, tmp_path: Path,
                                                                already: int) -> None:
    """A payment extension set Processing (or the merchant Shipped) before statusctl's record: issue 10.1."""
    start_shop()
    add_store(opencart)
    number, oid, to = new_order(opencart, tmp_path, already, items=(("MUG-1", 2), ("TEE-L", 1)))
    items = ["--item", "MUG-1"] if already == PROCESSING else []
    cli("ship", number, *items, "--tracking", "1Z999AA10123456784", "--carrier", "UPS", "--note", "On its way")
    run()
    run()
    [entry] = opencart.history(oid)
    assert entry == {"status": already, "notify": 1, "comment": "On its way\nTracking: UPS 1Z999AA10123456784"}
    [mail] = opencart.mails(to)
    assert "1Z999AA10123456784" in mail


@pytest.mark.parametrize(("release", "zone"), [("go", "UTC"), ("drop", "UTC"), ("go", "America/Los_Angeles")],
                         ids=["cart-got-it", "cart-never-saw-it", "cart-got-it-on-los-angeles-time"])
def test_killed_mid_send_the_resend_leaves_one_entry(opencart: OpenCart, tmp_path: Path, release: str,
                                                     zone: str) -> None:
    """SIGKILL while OpenCart holds the history post; the record is resent (attempt 2) after its lease.

    The order is already Shipped, so the status cannot tell whether the first post arrived:
    the resend must read that from api/order/info's date_modified, which OpenCart writes in
    the shop's time zone (8 hours behind UTC in Los Angeles in December: read as UTC, the
    first post would look older than the record and be made again).
    """
    start_shop(lease=LEASE_S)
    add_store(opencart, options=[f"timezone={zone}"])
    number, oid, to = new_order(opencart, tmp_path, SHIPPED)
    cli("ship", number, "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
    opencart.sql(f"UPDATE oc_setting SET value = '{zone}' WHERE `key` = 'config_timezone'")
    try:
        kill_mid_send(opencart.server, "route=api/order/history", release, LEASE_S)
    finally:
        opencart.sql("UPDATE oc_setting SET value = 'UTC' WHERE `key` = 'config_timezone'")
    assert len(opencart.history(oid)) == (1 if release == "go" else 0)
    run()
    assert records(number) == []
    [entry] = opencart.history(oid)
    assert entry["comment"] == "Tracking: UPS 1Z999AA10123456784"
    assert len(opencart.mails(to)) == 1
    [ok] = [h for h in history(number) if h["outcome"] == "ok"]
    # The send the kill cut short ended with no outcome, so it is no attempt (issue 11.5): the
    # resend is attempt 1 again, and the adapter knows it as a resend from its claim count.
    assert ok["attempt"] == 1 and ok["status"] == 200


def test_an_ended_session_means_one_login_and_the_call_again(opencart: OpenCart, tmp_path: Path) -> None:
    """OpenCart forgets the session while the second record's order read is on its way (kept token)."""
    start_shop()
    add_store(opencart)
    first, first_id, _ = new_order(opencart, tmp_path, PROCESSING)
    second, second_id, _ = new_order(opencart, tmp_path, PROCESSING)
    for number in (first, second):
        cli("ship", number, "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
    assert opencart.server
    calls = len(opencart.server.calls())
    opencart.server.hold("route=api/order/info&api_token=")  # any order read: the first one's
    proc = spawn(Path(os.environ["STATUSCTL_DB"]), "stack", "run", "--concurrency", "1")
    try:
        assert opencart.server.wait_for("held")
        opencart.server.hold(f"order_id={second_id}")  # then the second one's
        opencart.server.release("go")
        assert opencart.server.wait_for("held")
        opencart.sql("DELETE FROM oc_api_session; DELETE FROM oc_session")  # the session ends
        opencart.server.release("go")
        assert finish(proc).code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert opencart.status(first_id) == SHIPPED and opencart.status(second_id) == SHIPPED
    routes = [c.split("route=")[1].split("&")[0] for c in opencart.server.calls()[calls:]]
    assert routes == ["api/login", "api/order/info", "api/order/history",
                      "api/order/info", "api/login", "api/order/info", "api/order/history"]


def test_failures_are_classified(opencart: OpenCart, tmp_path: Path) -> None:
    start_shop()
    cli("config", "set", "StackRetrySchedule", "600")  # a transient failure waits: one attempt each
    add_store(opencart)
    add_store(opencart, "wrongkey", key="Y" * 256)
    add_store(opencart, "down", url="http://127.0.0.1:9")
    good, good_id, _ = new_order(opencart, tmp_path, PROCESSING)
    unknown = "OC-NOPE"
    import_order(tmp_path, unknown, 987654, "nobody@example.test", "oc")
    wrong, _, _ = new_order(opencart, tmp_path, PROCESSING, store="wrongkey")
    down, _, _ = new_order(opencart, tmp_path, PROCESSING, store="down")
    assert opencart.server
    calls = len(opencart.server.calls())
    for number in (good, unknown, wrong, down):
        cli("ship", number, "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
    cli("stack", "run", "--concurrency", "1", code=3)  # one send at a time: the unknown order meets a kept token
    assert records(good) == [] and opencart.status(good_id) == SHIPPED
    [missing] = records(unknown)
    assert missing["state"] == "failed" and "Order could not be found" in missing["last_error"]
    assert missing["last_status"] == 200
    [refused] = records(wrong)
    assert refused["state"] == "failed" and "wrong API username or key" in refused["last_error"]
    assert "Y" * 20 not in refused["last_error"] + (refused["last_answer"] or "")
    [unreachable] = records(down)
    assert unreachable["state"] == "retrying" and "network error" in unreachable["last_error"]
    routes = [c.split("route=")[1].split("&")[0] for c in opencart.server.calls()[calls:]]
    # one login for the store "oc" (and one refused for "wrongkey"); "not found" was asked once, no re-login
    assert routes.count("api/order/info") == 2 and routes.count("api/login") == 2, routes


def test_with_its_database_down_opencart_answers_500_and_the_record_waits(opencart: OpenCart,
                                                                            tmp_path: Path) -> None:
    start_shop()
    cli("config", "set", "StackRetrySchedule", "600")
    add_store(opencart)
    number, oid, to = new_order(opencart, tmp_path, PROCESSING)
    cli("ship", number, "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
    waiting = run_with_database_down(opencart.db, number)
    assert waiting["last_answer"] == ""  # OpenCart's 500 has an empty body
    run()
    assert records(number) == [] and opencart.status(oid) == SHIPPED
    assert len(opencart.history(oid)) == 1 and len(opencart.mails(to)) == 1

