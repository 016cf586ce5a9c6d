"""The seti adapter against the demo cart script over real HTTP: forms, XML, answers, faults."""

from __future__ import annotations

import asyncio
import copy
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from statusctl.carts.base import Context, Record, Rejected, make_client
from statusctl.carts.seti import SetiAdapter, parse_answer, script_error
from statusctl.democart import PATH, DemoCart
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from ..helpers import ROOT
from .contract import shipped_payload
from .fake_seti import CODE, PASSWORD, USER, SetiFake, make_store, secrets
from .fakeserver import Answer, FakeServer


@pytest.fixture
def served() -> Iterator[tuple[SetiFake, FakeServer]]:
    fake = SetiFake()
    with FakeServer(fake) as server:
        yield fake, server


def _ctx(url: str, mappings: dict[str, dict[str, str]] | None = None, **options: str) -> Context:
    return Context(make_store(url, True, **options), secrets(True), mappings or {})


def send(url: str, payload: Payload | dict[str, Any], *, mappings: dict[str, dict[str, str]] | None = None,
         **options: str) -> None:
    ctx = _ctx(url, mappings, **options)

    async def go() -> None:
        async with make_client() as client:
            await SetiAdapter(client, ctx).deliver(Record("rec-1", 1, dict(payload), time.time()))

    asyncio.run(go())


def check(url: str, good: bool = True) -> str:
    ctx = Context(make_store(url, good), secrets(good))

    async def go() -> str:
        async with make_client() as client:
            return await SetiAdapter(client, ctx).check()

    return asyncio.run(go())


def with_packages(n: int) -> Payload:
    payload = shipped_payload()
    template = payload["packages"][0]
    payload["packages"] = []
    for i in range(1, n + 1):
        pkg = copy.deepcopy(template)
        pkg["tracking"] = f"TRACK{i}"
        pkg["carrier"] = f"Carrier{i}"
        pkg["shipped_at"] = f"2026-11-2{i}T10:00:00Z"
        pkg["items"] = [{"sku": "MUG-1", "cart_line_id": "9001", "quantity": 1}]
        payload["packages"].append(pkg)
    return payload


# -- the delimited form ---------------------------------------------------------------------------


def test_delimited_form_common_fields_and_one_package_without_suffix(served):
    fake, server = served
    send(server.base_url, shipped_payload())
    form = server.requests[-1].form()
    assert server.requests[-1].headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert form["setifunction"] == "updatestatus"
    assert (form["setiuser"], form["password"], form["code"]) == (USER, PASSWORD, CODE)
    assert form["omversion"]
    assert form["ordernumber"] == "501"  # the cart's own id
    assert form["refnumber"] == "1001"
    assert form["orderstatus"] == "Order Shipped"
    assert form["trackcount"] == "1"
    assert (form["tracknum"], form["trackcarrier"], form["trackpickupdate"]) == (
        "1Z999AA10123456784", "UPS", "2026-11-21")
    assert "tracknum1" not in form
    assert "Shipped with UPS" in form["orderdetail"]
    assert "MUG-1: none -> Item Shipped" in form["orderdetail"]
    assert fake.cart.received[-1]["form"] == "delimited"
    assert fake.cart.orders["501"].status == "Order Shipped"


def test_delimited_form_with_no_package(served):
    fake, server = served
    send(server.base_url, with_packages(0))
    form = server.requests[-1].form()
    assert form["trackcount"] == "0"
    assert not [k for k in form if k.startswith("track") and k != "trackcount"]


def test_delimited_form_with_three_packages_suffixed(served):
    fake, server = served
    send(server.base_url, with_packages(3))
    form = server.requests[-1].form()
    assert form["trackcount"] == "3"
    assert "tracknum" not in form
    for i in (1, 2, 3):
        assert form[f"tracknum{i}"] == f"TRACK{i}"
        assert form[f"trackcarrier{i}"] == f"Carrier{i}"
        assert form[f"trackpickupdate{i}"] == f"2026-11-2{i}"
    assert fake.cart.tracking_of("501") == ["TRACK1", "TRACK2", "TRACK3"]


def test_order_number_falls_back_to_our_number(served):
    fake, server = served
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = None
    send(server.base_url, payload)
    assert server.requests[-1].form()["ordernumber"] == "1001"


def test_mapped_label_value_is_sent(served):
    fake, server = served
    fake.cart.statuses.add("shipped")
    send(server.base_url, shipped_payload(), mappings={"order shipped": {"seti": "Shipped"}})
    assert server.requests[-1].form()["orderstatus"] == "Shipped"


def test_only_items_changed_sends_the_current_order_label(served):
    fake, server = served
    payload = shipped_payload()
    payload["order"]["label"] = payload["order"]["previous_label"] = "Processing"
    payload["items"][1]["changed"] = False
    send(server.base_url, payload)
    form = server.requests[-1].form()
    assert form["orderstatus"] == "Processing"
    assert "MUG-1" in form["orderdetail"] and "TEE-L" not in form["orderdetail"]


# -- the XML form ---------------------------------------------------------------------------------


def test_xml_form_parses_back_with_items_and_packages(served):
    fake, server = served
    send(server.base_url, with_packages(2), xml="true")
    form = server.requests[-1].form()
    assert form["setifunction"] == "updatestatus" and form["setiuser"] == USER
    assert "ordernumber" not in form
    order = ET.fromstring(form["update"]).find("Order")
    assert order is not None
    assert order.findtext("OrderNumber") == "501"
    assert order.findtext("ReferenceNumber") == "1001"
    assert order.findtext("Status") == "Order Shipped"
    assert order.findtext("ChangeDateTime") == "2026-11-21 10:00:00"
    packages = order.findall("Packages/Package")
    assert [p.findtext("TrackingID") for p in packages] == ["TRACK1", "TRACK2"]
    assert [p.findtext("TrackNum") for p in packages] == ["TRACK1", "TRACK2"]
    assert [p.findtext("Shipper") for p in packages] == ["Carrier1", "Carrier2"]
    assert packages[0].findtext("PickupDate") == "2026-11-21"
    items = {i.findtext("RefNumber"): i for i in order.findall("Items/Item")}
    assert set(items) == {"MUG-1", "TEE-L"}
    mug = items["MUG-1"]
    assert mug.findtext("ItemNumber") == "9001"
    assert (mug.findtext("Status"), mug.findtext("Ordered"), mug.findtext("Shipped"), mug.findtext("Needed")) == (
        "Item Shipped", "2", "2", "0")
    refs = [(p.findtext("PackageID"), p.findtext("Quantity")) for p in mug.findall("Packages/Package")]
    assert refs == [("TRACK1", "1"), ("TRACK2", "1")]
    assert fake.cart.received[-1]["form"] == "xml"
    assert fake.cart.tracking_of("501") == ["TRACK1", "TRACK2"]


def test_xml_form_escapes_hostile_characters(served):
    fake, server = served
    hostile = """<b>Fish & "Chips"</b> 'n' </Notes><Status>Hacked</Status>"""
    payload = shipped_payload(tracking="1Z<&\"'>")
    payload["note"] = hostile
    payload["items"][0]["sku"] = "MUG<&>"
    payload["packages"][0]["items"][0]["sku"] = "MUG<&>"
    send(server.base_url, payload, xml="true")
    raw = server.requests[-1].form()["update"]
    assert "&lt;" in raw and "&amp;" in raw
    assert "<Status>Hacked" not in raw
    order = ET.fromstring(raw).find("Order")
    assert order is not None
    assert order.findtext("Comments") == hostile
    assert order.findtext("Packages/Package/TrackingID") == "1Z<&\"'>"
    assert order.findtext("Packages/Package/TrackNum") == "1Z<&\"'>"
    assert order.findall("Status")[0].text == "Order Shipped"
    assert len(order.findall("Status")) == 1
    assert "MUG<&>" in [i.findtext("RefNumber") for i in order.findall("Items/Item")]


# -- answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    "SETIResponse: update=OK;Notes=",
    "SETIResponse=OK;",
    "SETIRESPONSE: update=OK;Notes=\n",
    "setiresponse: update=ok;notes=fine",
    "\n\nSETIResponse: update=True;Notes=",
])
def test_tolerant_success_variants(served, body):
    fake, server = served
    server.fail_next(Answer(200, body))
    send(server.base_url, shipped_payload())


def test_update_false_with_200_is_rejected_with_the_reason(served):
    fake, server = served
    server.fail_next(Answer(200, "SETIResponse: update=False;Notes=Order 501 could not be found; sorry"))
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert "Order 501 could not be found; sorry" in err.value.reason
    assert err.value.status == 200
    assert "update=False" in err.value.answer


def test_unknown_status_is_refused_by_the_demo_cart(served):
    fake, server = served
    payload = shipped_payload()
    payload["order"]["label"] = "Gift Wrapped"
    with pytest.raises(Rejected) as err:
        send(server.base_url, payload)
    assert "Unknown status 'Gift Wrapped'" in err.value.reason
    assert fake.cart.received == []


def test_status_names_match_case_insensitively(served):
    fake, server = served
    payload = shipped_payload()
    payload["order"]["label"] = "order SHIPPED"
    send(server.base_url, payload)


def test_wrong_password_is_refused_and_not_echoed(served):
    fake, server = served
    ctx = Context(make_store(server.base_url, False), secrets(False))

    async def go() -> None:
        async with make_client() as client:
            await SetiAdapter(client, ctx).deliver(Record("rec-1", 1, dict(shipped_payload()), time.time()))

    with pytest.raises(Rejected) as err:
        asyncio.run(go())
    assert "Invalid username" in err.value.reason
    assert "wrong-password" not in err.value.reason + err.value.answer


@pytest.mark.parametrize("body", [
    "SETIError: Invalid username, password, or store code.",
    "<?xml version='1.0'?><SETIOrders><Response><ResponseCode>3</ResponseCode>"
    "<ResponseDescription>User Not Found</ResponseDescription></Response></SETIOrders>",
])
def test_script_errors_are_rejected_with_their_reason(served, body):
    fake, server = served
    server.fail_next(Answer(200, body))
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert "refused" in err.value.reason
    assert ("Invalid username" in err.value.reason) or ("User Not Found" in err.value.reason)


# The literal `updatestatus` answers of real cart scripts (../shared/peers/README.md, "Reference
# answers of real Stone Edge cart scripts"): (script, answer, None for success or the reason shown).
REAL_ANSWERS = [
    ("Stone Edge's Magento 1 script", "SETIResponse=OK;", None),
    ("Stone Edge's Magento 1 script", "SETIResponse=False;Note=Missing or invalid status update data: …",
     "The cart refused the update: Missing or invalid status update data: … (update=False)"),
    ("Inroads Shopping Cart module", "SETIRESPONSE: update=OK;Notes=", None),
    ("Inroads Shopping Cart module", "SETIRESPONSE: update=False;Notes=Unable to find order #5",
     "The cart refused the update: Unable to find order #5 (update=False)"),
    ("MerchantTribe 1.5.4", "SETIResponse: update=OK;Notes=", None),
    ("MerchantTribe 1.5.4", "SETIResponse: update=false;Notes=Error While Saving Order",
     "The cart refused the update: Error While Saving Order (update=false)"),
    ("Interspire (XML error)",
     '<?xml version="1.0" encoding="UTF-8" ?><SETIError><Response><ResponseCode>3</ResponseCode>'
     "<ResponseDescription>Error: Either the username or password was invalid.</ResponseDescription>"
     "</Response></SETIError>",
     "The cart script refused the update: Error: Either the username or password was invalid. "
     "(ResponseCode 3)"),
    ("Inroads (XML error)",
     "<?xml version='1.0'?><SETIOrders><Response><ResponseCode>3</ResponseCode>"
     "<ResponseDescription>User Not Found</ResponseDescription></Response></SETIOrders>",
     "The cart script refused the update: User Not Found (ResponseCode 3)"),
]


@pytest.mark.parametrize("script,body,reason", REAL_ANSWERS, ids=[f"{s}: {b[:30]}" for s, b, _ in REAL_ANSWERS])
def test_every_real_script_answer_is_read_right(served, script, body, reason):
    fake, server = served
    server.fail_next(Answer(200, body))
    if reason is None:
        send(server.base_url, shipped_payload())
        return
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert err.value.reason == reason
    assert err.value.status == 200
    assert err.value.answer == " ".join(body.split())[:300]  # the raw answer stays in the history
    assert "<" not in err.value.reason  # never raw XML as the reason


@pytest.mark.parametrize("body,reason", [
    (REAL_ANSWERS[6][1], "Error: Either the username or password was invalid. (ResponseCode 3)"),
    (REAL_ANSWERS[7][1], "User Not Found (ResponseCode 3)"),
    ("SETIResponse=False;Note=Missing or invalid status update data: …",
     "Missing or invalid status update data: …"),
])
def test_check_reads_the_real_error_answers_too(served, body, reason):
    fake, server = served
    server.fail_next(Answer(200, body))
    with pytest.raises(Rejected) as err:
        check(server.base_url)
    assert err.value.reason == f"The cart script refused the order count: {reason}"


def test_the_real_answers_here_are_those_of_the_shared_table():
    table = ROOT.parent / "shared" / "peers" / "README.md"
    if not table.exists():
        pytest.skip(f"{table} is missing (the real-cart facts live beside the repository)")
    section = table.read_text().split("## Reference answers of real Stone Edge cart scripts", 1)[1]
    rows = [row.split("|")[2:4] for row in section.split("## ", 1)[0].splitlines() if row.startswith("| ")]
    literals = {found[0] for cells in rows for cell in cells if (found := re.findall(r"`([^`]+)`", cell))}
    assert literals and literals == {body for _, body, _ in REAL_ANSWERS}


def test_xml_error_answers_escape_and_odd_shapes():
    assert script_error("<SETIError><Response><ResponseDescription>Bad &amp; worse</ResponseDescription>"
                        "</Response></SETIError>") == "Bad & worse"
    assert script_error("<SETIOrders><Response><ResponseCode>1</ResponseCode></Response></SETIOrders>") is None
    # not well-formed: still the description, unescaped, not the markup
    assert script_error("<SETIError><Response><ResponseCode>3</ResponseCode><ResponseDescription>No &amp; "
                        "way</ResponseDescription></SETIError>") == "No & way (ResponseCode 3)"
    assert script_error("SETIError: Invalid store code") == "Invalid store code"
    answer = parse_answer("SETIResponse=False;Note=a; b")
    assert answer is not None and not answer.ok and answer.notes == "a; b"
    answer = parse_answer("SETIResponse: update=OK;Notes=Denote=this")
    assert answer is not None and answer.ok and answer.notes == "Denote=this"


@pytest.mark.parametrize("body", ["<html><body>Welcome to our shop</body></html>", "", "SETIResponse:"])
def test_malformed_answer_is_rejected_with_an_excerpt(served, body):
    fake, server = served
    server.fail_next(Answer(200, body))
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert "malformed answer" in err.value.reason
    assert err.value.answer == " ".join(body.split())[:300]


def test_secret_echoed_in_a_refusal_is_scrubbed(served):
    fake, server = served
    server.fail_next(Answer(200, f"SETIResponse: update=False;Notes=bad password {PASSWORD}"))
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert PASSWORD not in err.value.reason and PASSWORD not in err.value.answer


def test_parse_answer_reads_fields():
    answer = parse_answer("SETIResponse: ordercount=12")
    assert answer is not None and answer.fields == {"ordercount": "12"}
    assert parse_answer("nothing here") is None


# -- faults ---------------------------------------------------------------------------------------


def test_reset_mid_answer_is_a_transport_error(served):
    fake, server = served
    server.fail_next(Answer(200, "SETIResponse: update=OK;Notes=", reset=True))
    with pytest.raises(httpx.TransportError):
        send(server.base_url, shipped_payload())


def test_slow_answer_beyond_the_store_timeout_times_out(served):
    fake, server = served
    server.fail_next(Answer(200, "SETIResponse: update=OK;Notes=", delay=1.0))
    started = time.monotonic()
    from statusctl.carts.base import TryLater

    with pytest.raises(TryLater, match="timed out: no complete answer within the store's timeout of 0.2 s"):
        send(server.base_url, shipped_payload(), timeout="0.2")
    assert time.monotonic() - started < 0.9


# -- check ----------------------------------------------------------------------------------------


def test_check_asks_for_the_order_count(served):
    fake, server = served
    send(server.base_url, shipped_payload())
    seen = check(server.base_url)
    assert "1 order" in seen
    form = server.requests[-1].form()
    assert form["setifunction"] == "ordercount"
    assert (form["lastorder"], form["lastdate"]) == ("all", "all")
    with pytest.raises(Rejected) as err:
        check(server.base_url, good=False)
    assert "Invalid username" in err.value.reason


def test_check_reports_a_script_without_ordercount(served):
    fake, server = served
    server.fail_next(Answer(200, "SETIError: Integration has no support for function: ordercount"))
    with pytest.raises(Rejected) as err:
        check(server.base_url)
    assert "no support" in err.value.reason


# -- the demo cart's own server -------------------------------------------------------------------


def test_demo_cart_serves_on_loopback_and_records_updates():
    with DemoCart(password="demo-password-1") as cart:
        assert cart.url.startswith("http://127.0.0.1:") and cart.url.endswith(PATH)
        store = Store("demo", "seti", cart.url, {"user": {"value": cart.user}, "password": {"value": cart.password}})
        ctx = Context(store, {"user": cart.user, "password": cart.password})

        async def go() -> None:
            async with make_client() as client:
                adapter = SetiAdapter(client, ctx)
                await adapter.deliver(Record("rec-1", 1, dict(with_packages(2)), time.time()))
                await adapter.deliver(Record("rec-1", 2, dict(with_packages(2)), time.time()))

        asyncio.run(go())
        assert len(cart.received) == 2
        first = cart.received[0]
        assert (first["order"], first["status"], first["tracking"], first["form"]) == (
            "501", "Order Shipped", ["TRACK1", "TRACK2"], "delimited")
        assert isinstance(first["time"], float)
        assert cart.tracking_of("501") == ["TRACK1", "TRACK2"]  # the resend added nothing
        with httpx.Client() as client:
            assert client.get(cart.url).status_code == 405
            assert client.post(cart.url.replace(PATH, "/other"), data={}).status_code == 404
            answer = client.post(cart.url, data={"setifunction": "sendversion"}).text
            assert answer.startswith("SETIResponse: version=")
    with pytest.raises(RuntimeError):
        _ = cart.url


def test_demo_cart_default_password_is_random_and_extra_statuses_are_known():
    a, b = DemoCart(), DemoCart(statuses=["Gift Wrapped"])
    assert a.password != b.password and len(a.password) >= 12
    assert "gift wrapped" in b.statuses and "gift wrapped" not in a.statuses
    assert {"order shipped", "item returned"} <= a.statuses
