"""The webhook and oss adapters against signature-checking receivers over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator

import pytest
import standardwebhooks

from statusctl.carts import signing
from statusctl.carts.base import Adapter, Context, Record, Rejected, TryLater, make_client
from statusctl.carts.oss import OssAdapter, health_url
from statusctl.carts.webhook import EVENT_TYPE, WebhookAdapter
from statusctl.domain.matrix import CART_TYPES
from statusctl.domain.stores import Store

from .contract import shipped_payload
from .fake_oss import OssFake
from .fake_oss import make_store as oss_store
from .fake_webhook import BAD, GOOD, PATH, Receiver, make_store, reference_verify
from .fakeserver import Answer, FakeServer

NEW = "whsec_" + base64.b64encode(b"the-next-key-after-rotation-000000").decode()


@pytest.fixture
def served() -> Iterator[tuple[Receiver, FakeServer]]:
    receiver = Receiver()
    with FakeServer(receiver) as server:
        yield receiver, server
    assert receiver.disagreements == []


def send(store: Store, secret: str, *records: Record, cls: type[Adapter] = WebhookAdapter) -> None:
    ctx = Context(store, {"secret": secret})

    async def go() -> None:
        async with make_client() as client:
            adapter = cls(client, ctx)
            for record in records:
                await adapter.deliver(record)

    asyncio.run(go())


def record(uid: str = "rec_01", attempt: int = 1) -> Record:
    return Record(uid, attempt, dict(shipped_payload()), 1_790_000_000.0)


def test_body_and_headers_verify_with_the_reference_library(served):
    receiver, server = served
    send(make_store(server.base_url), GOOD, record())
    req = server.requests[-1]
    assert req.path == PATH and req.headers["content-type"] == "application/json"
    assert reference_verify([GOOD], req.headers, req.body) == "rec_01"
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 10
    body = json.loads(req.body)
    assert (body["id"], body["type"], body["timestamp"]) == ("rec_01", EVENT_TYPE, "2026-11-21T10:00:00Z")
    payload = shipped_payload()
    for key, value in payload.items():
        assert body[key] == value  # the payload's fields, as they are
    assert list(body)[:3] == ["id", "type", "timestamp"]
    with pytest.raises(signing.SignatureError):
        reference_verify([BAD], req.headers, req.body)


def test_webhook_id_and_body_are_stable_across_attempts(served):
    receiver, server = served
    send(make_store(server.base_url), GOOD, record(attempt=1), record(attempt=2))
    first, second = server.requests[-2:]
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "rec_01"
    assert first.body == second.body
    assert receiver.seen == ["rec_01", "rec_01"]
    assert list(receiver.delivered) == ["rec_01"]


def test_timestamp_falls_back_to_the_queue_time():
    rec = record()
    del rec.payload["changed_at"]
    ctx = Context(make_store("http://127.0.0.1:1"), {"secret": GOOD})

    async def go() -> bytes:
        async with make_client() as client:
            return WebhookAdapter(client, ctx).body(rec)

    assert json.loads(asyncio.run(go()))["timestamp"] == "2026-09-21T14:13:20Z"


def test_key_rotation_signs_with_every_secret(served):
    receiver, server = served
    send(make_store(server.base_url), f"{NEW} {GOOD}", record())
    req = server.requests[-1]
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    assert req.headers["webhook-signature"].startswith("v1,")
    for keys in ([GOOD], [NEW], [BAD, NEW], [NEW, GOOD]):
        assert reference_verify(keys, req.headers, req.body) == "rec_01"
    with pytest.raises(signing.SignatureError):
        reference_verify([BAD], req.headers, req.body)
    assert list(receiver.delivered) == ["rec_01"]


def unpadded(secret: str) -> str:
    return secret.rstrip("=")


@pytest.mark.parametrize("size", range(24, 36))
def test_secrets_decode_as_the_reference_library_decodes_them(size):
    key = bytes(range(7, 7 + size))
    padded = "whsec_" + base64.b64encode(key).decode()
    for form in (padded, unpadded(padded), unpadded(padded) + "===", padded[len("whsec_"):],
                 unpadded(padded)[len("whsec_"):]):
        assert signing.secret_bytes(form) == key == standardwebhooks.Webhook(form)._whsecret


def test_what_the_reference_library_would_read_differently_is_refused():
    # The PyPI library drops characters outside the alphabet and so signs with another key:
    # statusctl refuses such a secret with a reason instead of sending with a key nobody holds.
    for bad in ("whsec_not*base64!", "whsec_a", "whsec_", "whsec_====", "whsec_abc-_def"):
        with pytest.raises(signing.SignatureError):
            signing.secret_bytes(bad)


def test_a_secret_that_lost_its_padding_signs_and_is_accepted():
    assert NEW.endswith("=") and GOOD.endswith("=")
    receiver = Receiver(keys=[unpadded(GOOD), NEW])  # the reference library holds the other forms
    with FakeServer(receiver) as server:
        send(make_store(server.base_url), unpadded(GOOD), record("rec_a"))
        send(make_store(server.base_url), f"{unpadded(NEW)} {GOOD}", record("rec_b"))  # rotation, mixed
        rotated = server.requests[-1]
    assert list(receiver.delivered) == ["rec_a", "rec_b"] and receiver.disagreements == []
    assert len(rotated.headers["webhook-signature"].split(" ")) == 2
    for keys in ([GOOD], [unpadded(NEW)], [NEW + "="]):
        assert reference_verify(keys, rotated.headers, rotated.body) == "rec_b"


def test_stores_and_the_oss_accept_an_unpadded_secret(tmp_path):
    from statusctl.oss.app import create_app

    from ..helpers import cli

    cli("stores", "add", "hook", "--cart", "webhook", "--url", "https://erp.example/hook",
        "--secret", f"secret={unpadded(GOOD)}")
    create_app(tmp_path / "oss.db", [unpadded(GOOD)])


def test_receiver_holding_old_and_new_keys_accepts_the_new_one():
    receiver = Receiver(keys=[GOOD, NEW])
    with FakeServer(receiver) as server:
        send(make_store(server.base_url), NEW, record())
    assert list(receiver.delivered) == ["rec_01"]


def test_bad_signature_is_refused_permanently(served):
    receiver, server = served
    with pytest.raises(Rejected) as err:
        send(make_store(server.base_url), BAD, record())
    assert err.value.status == 401 and "credentials" in err.value.reason
    assert receiver.delivered == {}


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_ok(served, status):
    receiver, server = served
    server.fail_next(Answer(status, b""))
    send(make_store(server.base_url), GOOD, record())


def test_410_gone_is_permanent(served):
    receiver, server = served
    server.fail_next(Answer(410, "this hook was deleted"))
    with pytest.raises(Rejected) as err:
        send(make_store(server.base_url), GOOD, record())
    assert err.value.status == 410 and "gone" in err.value.reason


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(served, status):
    receiver, server = served
    server.fail_next(Answer(status, "", {"Location": server.base_url + PATH}))
    with pytest.raises(Rejected) as err:
        send(make_store(server.base_url), GOOD, record())
    assert err.value.status == status and "not followed" in err.value.reason
    assert len(server.requests) == 1
    assert receiver.delivered == {}


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_transient_statuses_try_later(served, status):
    receiver, server = served
    server.fail_next(Answer(status, "later", {"Retry-After": "3"}))
    with pytest.raises(TryLater) as err:
        send(make_store(server.base_url), GOOD, record())
    assert err.value.retry_after == 3


def test_missing_or_invalid_secret_is_refused_without_sending(served):
    receiver, server = served
    with pytest.raises(Rejected, match="has no secret .secret."):
        send(make_store(server.base_url), "", record())
    with pytest.raises(Rejected, match="base64"):
        send(make_store(server.base_url), "whsec_not*base64!", record())
    assert server.requests == []


def test_webhook_check_explains_there_is_no_harmless_read(served):
    receiver, server = served
    ctx = Context(make_store(server.base_url), {"secret": GOOD})

    async def go() -> str:
        async with make_client() as client:
            return await WebhookAdapter(client, ctx).check()

    with pytest.raises(Rejected, match="no harmless read"):
        asyncio.run(go())
    assert server.requests == []
    assert CART_TYPES["webhook"].has_test is False


# -- oss ------------------------------------------------------------------------------------------


def test_oss_posts_the_same_signed_body_to_api_updates():
    fake = OssFake()
    with FakeServer(fake) as server:
        send(oss_store(server.base_url), GOOD, record(), cls=OssAdapter)
        req = server.requests[-1]
    assert (req.method, req.path) == ("POST", "/api/updates")
    assert reference_verify([GOOD], req.headers, req.body) == "rec_01"
    assert json.loads(req.body)["type"] == EVENT_TYPE
    assert list(fake.delivered) == ["rec_01"]
    assert issubclass(OssAdapter, WebhookAdapter) and CART_TYPES["oss"].has_test


def test_oss_check_reads_a_signed_healthz():
    fake = OssFake()
    with FakeServer(fake) as server:

        async def go(secret: str) -> str:
            ctx = Context(oss_store(server.base_url), {"secret": secret})
            async with make_client() as client:
                return await OssAdapter(client, ctx).check()

        assert "is up" in asyncio.run(go(GOOD))
        req = server.requests[-1]
        assert (req.method, req.path, req.body) == ("GET", "/healthz", b"")
        assert reference_verify([GOOD], req.headers, b"").startswith("check_")
        with pytest.raises(Rejected) as err:
            asyncio.run(go(BAD))
        assert err.value.status == 401
    assert fake.health_checks == 2 and fake.delivered == {}


@pytest.mark.parametrize("url, expected", [
    ("https://status.example/api/updates", "https://status.example/healthz"),
    ("https://status.example/api/updates/", "https://status.example/healthz"),
    ("https://example.com/oss/api/updates", "https://example.com/oss/healthz"),
    ("http://127.0.0.1:8080/hooks?x=1", "http://127.0.0.1:8080/healthz"),
])
def test_health_url(url, expected):
    assert health_url(url) == expected


def test_oss_check_says_when_the_signature_was_not_confirmed():
    fake = OssFake()
    with FakeServer(fake) as server:
        server.fail_next(Answer(200, "OK"))
        ctx = Context(oss_store(server.base_url), {"secret": GOOD})

        async def go() -> str:
            async with make_client() as client:
                return await OssAdapter(client, ctx).check()

        assert "did not confirm" in asyncio.run(go())
