"""The opencart vendor fake: OpenCart 3.0's catalog API (api/login, api/order/info, api/order/history).

It copies the answers of the real OpenCart 3.0.5.0 (catalog/controller/api/login.php
and api/order.php, and what tests/real/ sees): every answer is HTTP 200 JSON.
A wrong username or key gets `[]`; the right key from an IP not on the API
user's list gets `{"error": {"ip": "Warning: Your IP … is not allowed …",
"key": "Warning: Incorrect API Key!"}}`; a token whose session ended (here:
when the test says so) gets `{"error": "Warning: You do not have permission to
access the API!"}`; an unknown order `{"error": "Warning: Order could not be
found!"}`. A history post sets the order's status and `date_modified` (in the
shop's time zone, `zone`: UTC as in a default install), as the real one does.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from statusctl.domain.matrix import DEFAULT_MAPPINGS
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request, json_answer

USERNAME = "Default"
KEY = "p9Kx" * 64  # OpenCart generates 256-character API keys
STATUSES = {1: "Pending", 2: "Processing", 3: "Shipped", 5: "Complete", 7: "Canceled", 11: "Refunded"}
PERMISSION = "Warning: You do not have permission to access the API!"
LONG_AGO = "2026-11-20 09:00:00"  # when the fake's order was placed and last changed


def shop_now(zone: str) -> str:
    return datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


class OpenCartFake:
    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.orders: dict[str, dict[str, Any]] = {"501": {"order_id": "501", "order_status_id": "2",
                                                          "email": "jo@example.test", "comment": "",
                                                          "date_added": LONG_AGO, "date_modified": LONG_AGO}}
        self.sessions: dict[str, str] = {}  # api_token -> ip
        self.histories: list[dict[str, str]] = []
        self.allowed_ips = {"127.0.0.1"}
        self.zone = "UTC"  # the shop's time zone (System > Settings > Local), in which it writes times
        self.notices = False  # print a PHP notice before the JSON, as misconfigured shops do

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def answer(self, data: Any) -> Answer:
        if self.notices:
            text = "<b>Notice</b>: Undefined index: store_id in catalog/controller/api/order.php on line 4<br />"
            return Answer(200, text + json.dumps(data), {"Content-Type": "text/html; charset=utf-8"})
        return json_answer(200, data)

    def __call__(self, req: Request) -> Answer:
        if req.path not in ("/index.php", "/index.php/"):
            return Answer(404, "Not Found")
        route = req.arg("route") or ""
        if route == "api/login" and req.method == "POST":
            return self.login(req)
        if route not in ("api/order/info", "api/order/history"):
            return Answer(200, "<html>page not found</html>", {"Content-Type": "text/html"})
        if self.sessions.get(req.arg("api_token") or "") != "127.0.0.1":
            return self.answer({"error": PERMISSION})
        order = self.orders.get(req.arg("order_id") or "")
        if order is None:
            return self.answer({"error": "Warning: Order could not be found!"})
        if route == "api/order/info":
            return self.answer({"order": order, "success": "Success: You have modified orders!"})
        form = {key: req.form().get(key, "") for key in ("order_status_id", "notify", "override", "comment")}
        self.histories.append({"order_id": order["order_id"], **form})
        order["order_status_id"], order["date_modified"] = form["order_status_id"], shop_now(self.zone)
        return self.answer({"success": "Success: You have modified orders!"})

    def login(self, req: Request) -> Answer:
        form = req.form()
        if (form.get("username"), form.get("key")) != (USERNAME, KEY):
            return self.answer([])
        if "127.0.0.1" not in self.allowed_ips:
            return self.answer({"error": {"ip": "Warning: Your IP 127.0.0.1 is not allowed to access this API!",
                                          "key": "Warning: Incorrect API Key!"}})
        token = f"{next(self.counter):026d}"
        self.sessions[token] = "127.0.0.1"
        return self.answer({"success": "Success: API session successfully started!", "api_token": token})


def make_store(base_url: str, good: bool = True, **options: str) -> Store:
    return Store("shop", "opencart", base_url, {"username": {"value": USERNAME},
                                                 "key": {"value": KEY if good else "wrong-key-0000"}}, dict(options))


def secrets(good: bool = True) -> dict[str, str]:
    return {"username": USERNAME, "key": KEY if good else "wrong-key-0000"}


def mappings() -> dict[str, dict[str, str]]:
    return {label.lower(): {"opencart": m["opencart"]} for label, m in DEFAULT_MAPPINGS.items() if "opencart" in m}


def effects(handler: Handler, payload: Payload) -> int:
    """History entries whose comment carries the tracking number."""
    assert isinstance(handler, OpenCartFake)
    tracking = payload["packages"][0]["tracking"] or ""
    return sum(tracking in h["comment"] for h in handler.histories)


CASE = ContractCase(cart="opencart", make_fake=OpenCartFake, store=make_store, secrets=secrets, effects=effects,
                    mappings=mappings())
