"""prestashop adapter over real HTTP against the webservice fake."""

from __future__ import annotations

import asyncio
import copy
import re
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest

from statusctl.carts import xmlsafe
from statusctl.carts.base import Context, Record, Rejected, make_client
from statusctl.carts.prestashop import PrestaShopAdapter

from ..docs import documented
from ..helpers import ROOT, cli, cli_json
from .contract import shipped_payload
from .fake_prestashop import KEY, PrestaShopFake, make_store, mappings, secrets
from .fakeserver import FakeServer


@pytest.fixture
def fake() -> PrestaShopFake:
    return PrestaShopFake()


@pytest.fixture
def server(fake: PrestaShopFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


def send(url: str, payload: Any, maps: dict[str, dict[str, str]] | None = None, good: bool = True) -> None:
    ctx = Context(make_store(url, good), secrets(good), mappings() if maps is None else maps)

    async def go() -> None:
        async with make_client() as client:
            await PrestaShopAdapter(client, ctx).deliver(Record("rec-1", 1, payload, time.time()))

    asyncio.run(go())


def check(url: str) -> str:
    async def go() -> str:
        async with make_client() as client:
            return await PrestaShopAdapter(client, Context(make_store(url), secrets())).check()

    return asyncio.run(go())


def writes(server: FakeServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method in ("POST", "PUT")]


def relabel(label: str | None, previous: str | None = "Processing") -> dict[str, Any]:
    payload = copy.deepcopy(shipped_payload())
    payload["order"]["label"], payload["order"]["previous_label"] = label, previous
    payload["packages"], payload["note"] = [], None
    return payload


def test_ship_sets_state_tracking_and_message_once(fake: PrestaShopFake, server: FakeServer) -> None:
    send(server.base_url, shipped_payload())
    assert fake.orders["501"]["current_state"] == 4
    [history] = fake.histories
    assert history["id_order_state"] == "4" and history["sendemail"] is True
    assert fake.carriers["11"]["tracking_number"] == "1Z999AA10123456784"
    assert fake.carriers["11"]["id_carrier"] == "2"  # the PUT sent the whole object back
    [message] = fake.messages
    assert message["message"] == "Shipped with UPS" and message["private"] == "0" and message["id_customer"] == "7"
    first = len(server.requests)
    send(server.base_url, shipped_payload())
    assert writes(server)[3:] == []  # the resend only read
    assert len(server.requests) > first


def test_requests_are_xml_with_basic_auth_of_the_key(server: FakeServer) -> None:
    send(server.base_url, shipped_payload())
    post = next(r for r in server.requests if r.method == "POST")
    assert post.headers["content-type"].startswith("application/xml")
    assert post.headers["authorization"].startswith("Basic ")
    root = xmlsafe.parse(post.body)
    assert root.tag == "prestashop" and root[0].tag == "order_history"
    assert post.arg("sendemail") == "1"


def test_no_history_when_the_order_already_has_the_state(fake: PrestaShopFake, server: FakeServer) -> None:
    fake.orders["501"]["current_state"] = 4
    send(server.base_url, shipped_payload())
    assert fake.histories == []


def test_a_numeric_mapping_is_used_as_the_state_id(fake: PrestaShopFake, server: FakeServer) -> None:
    send(server.base_url, relabel("Cancelled"), {"cancelled": {"prestashop": "6"}})
    assert fake.orders["501"]["current_state"] == 6
    assert not any(r.path.endswith("/order_states") for r in server.requests)


def test_state_names_match_in_any_language(fake: PrestaShopFake, server: FakeServer) -> None:
    send(server.base_url, relabel("Cancelled"), {"cancelled": {"prestashop": "  annulé "}})
    assert fake.orders["501"]["current_state"] == 6


def test_an_unknown_state_name_is_rejected_with_the_known_ones(server: FakeServer) -> None:
    with pytest.raises(Rejected, match="no order state named 'Sent'.*shipped"):
        send(server.base_url, relabel("Order Shipped"), {"order shipped": {"prestashop": "Sent"}})


def test_a_label_without_mapping_is_rejected_naming_label_and_cart(server: FakeServer) -> None:
    with pytest.raises(Rejected, match="'On Hold' has no mapping for cart type prestashop"):
        send(server.base_url, relabel("On Hold"))
    assert server.requests == []


def test_tracking_numbers_are_added_not_repeated(fake: PrestaShopFake, server: FakeServer) -> None:
    payload = shipped_payload(tracking="TRACK-A")
    payload["packages"].append({**payload["packages"][0], "tracking": "TRACK-B"})
    send(server.base_url, payload)
    send(server.base_url, shipped_payload(tracking="TRACK-B"))
    send(server.base_url, shipped_payload(tracking="TRACK-C"))
    assert fake.carriers["11"]["tracking_number"] == "TRACK-A, TRACK-B, TRACK-C"
    assert sum(w.startswith("PUT") for w in writes(server)) == 2


def test_item_only_records_send_tracking_but_no_state(fake: PrestaShopFake, server: FakeServer) -> None:
    payload = shipped_payload()
    payload["order"]["previous_label"] = payload["order"]["label"]
    send(server.base_url, payload)
    assert fake.histories == [] and fake.carriers["11"]["tracking_number"] == "1Z999AA10123456784"


def test_prestashop_errors_are_in_the_reason(fake: PrestaShopFake, server: FakeServer) -> None:
    fake.permissions["messages"] = ("get",)
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload())
    assert err.value.status == 405
    assert "26: Method POST is not allowed for the resource messages" in err.value.reason


def test_a_held_number_prestashop_would_refuse_is_replaced_not_sent_back(fake: PrestaShopFake,
                                                                        server: FakeServer) -> None:
    fake.carriers["11"]["tracking_number"] = "OLD<1>"  # written by a module straight into the database
    send(server.base_url, shipped_payload())
    assert fake.carriers["11"]["tracking_number"] == "1Z999AA10123456784"


def test_a_carrierless_order_fails_before_the_status_change(fake: PrestaShopFake, server: FakeServer) -> None:
    fake.carriers.clear()
    with pytest.raises(Rejected, match="has no carrier"):
        send(server.base_url, shipped_payload())
    assert writes(server) == [] and fake.histories == []


@pytest.mark.parametrize("tracking", ["1Z<999>", "ÄB123456", "1Z999;AA", "1Z999\tAA", "TRACK\n2", "X" * 65])
def test_a_tracking_number_prestashop_refuses_fails_before_any_write(
        fake: PrestaShopFake, server: FakeServer, tracking: str) -> None:
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload(tracking=tracking))
    assert repr(tracking) in err.value.reason and "nothing was sent" in err.value.reason
    assert writes(server) == [] and fake.histories == [] and fake.orders["501"]["current_state"] == 3


def test_every_character_isTrackingNumber_allows_goes_through(fake: PrestaShopFake, server: FakeServer) -> None:
    tracking = "Az09 ~:#,%&_=()[].?+-@/"
    send(server.base_url, shipped_payload(tracking=tracking))
    assert fake.carriers["11"]["tracking_number"] == tracking and fake.orders["501"]["current_state"] == 4


def test_this_records_numbers_must_fit_the_carrier_together(fake: PrestaShopFake, server: FakeServer) -> None:
    payload = shipped_payload(tracking="A" * 40)
    payload["packages"].append({**payload["packages"][0], "tracking": "B" * 30})
    with pytest.raises(Rejected, match="at most 64"):
        send(server.base_url, payload)
    assert writes(server) == []


@pytest.mark.parametrize("note", ["<script>alert(1)</script>", "see <img src=x onerror = boom>",
                                  "Transcript: call at 10", "<iframe src=x>", "< form action=y>"])
def test_a_note_isCleanHtml_refuses_fails_before_any_write(fake: PrestaShopFake, server: FakeServer,
                                                           note: str) -> None:
    payload = shipped_payload()
    payload["note"] = note
    with pytest.raises(Rejected, match="refuses in a message"):
        send(server.base_url, payload)
    assert writes(server) == [] and fake.histories == [] and fake.messages == []
    assert fake.carriers["11"]["tracking_number"] == ""


def test_a_refused_key_is_permanent_and_never_shown(server: FakeServer) -> None:
    with pytest.raises(Rejected) as err:
        send(server.base_url, shipped_payload(), good=False)
    assert err.value.status == 401 and "Authentification key is not active" in err.value.reason
    assert KEY not in err.value.reason + err.value.answer


def test_entity_declarations_in_an_answer_are_refused(fake: PrestaShopFake, server: FakeServer) -> None:
    fake.hostile = True
    with pytest.raises(Rejected, match="DTD or entities"):
        send(server.base_url, shipped_payload())


def test_notes_are_escaped_and_not_repeated(fake: PrestaShopFake, server: FakeServer) -> None:
    payload = relabel(None, None)
    payload["note"] = "Box <2> & co"
    send(server.base_url, payload)
    send(server.base_url, payload)
    assert [m["message"] for m in fake.messages] == ["Box <2> & co"]


def test_orders_need_the_numeric_prestashop_id(server: FakeServer) -> None:
    payload = shipped_payload()
    payload["order"]["cart_order_id"] = None
    payload["order"]["number"] = "XKBKNABJK"
    with pytest.raises(Rejected, match="numeric order id"):
        send(server.base_url, payload)


def test_check_lists_what_the_key_may_not_do(fake: PrestaShopFake, server: FakeServer) -> None:
    assert check(server.base_url) == "PrestaShop webservice of Statusctl Test: 6 resources allowed"
    fake.permissions["order_histories"] = ("get", "head")
    del fake.permissions["messages"]
    with pytest.raises(Rejected, match="order_histories POST, messages GET, messages POST"):
        check(server.base_url)


def test_xmlsafe_refuses_dtds_in_any_encoding() -> None:
    doc = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16")
    with pytest.raises(xmlsafe.UnsafeXML):
        xmlsafe.parse(doc)
    with pytest.raises(xmlsafe.UnsafeXML):
        xmlsafe.parse(b'<x xmlns:xi="http://www.w3.org/2001/XInclude">&ext;</x>')
    assert xmlsafe.text_of(xmlsafe.parse(b"<a><b><![CDATA[ 4 ]]></b></a>"), "b") == "4"



def test_the_documented_store_line_works(fake: PrestaShopFake, server: FakeServer) -> None:
    add, test = documented("prestashop")
    env = {"PRESTASHOP_WS_KEY": KEY}
    cli(*add, env=env)
    assert test == ["stores", "test", add[2]]
    local = [*add[:2], "local", *add[3:]]
    local[local.index("--url") + 1] = server.base_url
    cli(*local, env=env)
    assert "OK: PrestaShop webservice" in cli("stores", "test", "local", env=env).stdout
    fake.permissions["order_carriers"] = ("get",)
    assert "order_carriers PUT" in cli("stores", "test", "local", env=env, code=1).stderr


def test_the_documented_partially_shipped_mapping_is_accepted(fake: PrestaShopFake, server: FakeServer) -> None:
    text = (ROOT / "docs" / "carts" / "prestashop.md").read_text()
    line = re.search(r"`(statusctl labels add \"Partially Shipped\"[^`]*)`", text)
    assert line is not None
    cli("init")
    cli(*shlex.split(line.group(1))[1:])
    labels = {row["name"]: row for row in cli_json("labels", "list")}
    assert labels["Partially Shipped"]["mappings"]["prestashop"] == "Processing in progress"
    send(server.base_url, relabel("Partially Shipped"), {"partially shipped": {"prestashop": "Processing in progress"}})
    assert fake.orders["501"]["current_state"] == 3 and fake.histories == []


@pytest.mark.parametrize(("value", "why"), [("0", "at least 1"), ("x" * 65, "at most 64 characters")])
def test_a_mapping_labels_add_would_refuse_is_rejected_before_any_request(server: FakeServer, value: str,
                                                                          why: str) -> None:
    with pytest.raises(Rejected) as err:
        send(server.base_url, relabel("Cancelled"), {"cancelled": {"prestashop": value}})
    assert why in err.value.reason and "'Cancelled'" in err.value.reason
    assert server.requests == []
