"""The webhook vendor fake: a receiver that verifies Standard Webhooks signatures and dedupes by id."""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import Any

import standardwebhooks

from statusctl.carts import signing
from statusctl.domain.record import Payload
from statusctl.domain.stores import Store

from .contract import ContractCase
from .fakeserver import Answer, Handler, Request

GOOD = "whsec_" + base64.b64encode(b"statusctl-test-key-0123456789abcdef").decode()
BAD = "whsec_" + base64.b64encode(b"somebody-else's-key-0123456789xyz").decode()
PATH = "/hooks/orders"


def reference_verify(keys: list[str], headers: Mapping[str, str], body: bytes) -> str:
    """The webhook-id when the PyPI `standardwebhooks` library (the reference) accepts the request
    with any of `keys`, after checking that statusctl's own `signing.verify` agrees."""
    try:
        ours: str | None = signing.verify(keys, headers, body)
    except signing.SignatureError:
        ours = None
    theirs = None
    for key in keys:
        try:
            standardwebhooks.Webhook(key).verify(body, dict(headers), json_parse=False)
        except standardwebhooks.WebhookVerificationError:
            continue
        theirs = headers["webhook-id"]
        break
    if ours != theirs:
        raise AssertionError(f"signing.verify says {ours!r}, standardwebhooks says {theirs!r}")
    if theirs is None:
        raise signing.SignatureError("standardwebhooks found no matching signature")
    return theirs


class Receiver:
    """Accepts signed POSTs on `path`; keeps the first body of each webhook-id (the dedupe).

    Every request is verified with the reference library and statusctl's own verifier; when
    they disagree the answer is a 500 (and `disagreements` says why), which fails the test.
    """

    def __init__(self, keys: list[str] | None = None, path: str = PATH, ok_status: int = 204) -> None:
        self.keys = keys if keys is not None else [GOOD]
        self.path = path
        self.ok_status = ok_status
        self.delivered: dict[str, Any] = {}  # webhook-id -> parsed body
        self.seen: list[str] = []  # every verified webhook-id, duplicates included
        self.disagreements: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Answer:
        if req.path != self.path:
            return Answer(404, "no such endpoint")
        if req.method != "POST":
            return Answer(405, "POST only")
        try:
            msg_id = reference_verify(self.keys, req.headers, req.body)
        except signing.SignatureError as exc:
            return Answer(401, f"signature refused: {exc}")
        except AssertionError as exc:
            self.disagreements.append(str(exc))
            return Answer(500, str(exc))
        with self.lock:
            self.seen.append(msg_id)
            self.delivered.setdefault(msg_id, req.json())
        return Answer(self.ok_status, b"")

    def ids_for(self, payload: Payload) -> list[str]:
        """Distinct webhook-ids accepted for the payload's order."""
        number = payload["order"]["number"]
        with self.lock:
            return [i for i, body in self.delivered.items() if body.get("order", {}).get("number") == number]


def make_store(base_url: str, good: bool = True) -> Store:
    return Store("hook", "webhook", base_url + PATH, {"secret": {"value": GOOD if good else BAD}})


def secrets(good: bool = True) -> dict[str, str]:
    return {"secret": GOOD if good else BAD}


def effects(handler: Handler, payload: Payload) -> int:
    assert isinstance(handler, Receiver)
    return len(handler.ids_for(payload))


CASE = ContractCase(
    cart="webhook",
    make_fake=Receiver,
    store=make_store,
    secrets=secrets,
    effects=effects,
    testable=False,
)
