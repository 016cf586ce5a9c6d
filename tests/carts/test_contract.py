"""One contract suite, run over every cart adapter against its vendor fake over real HTTP."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import time
from collections.abc import Iterator

import httpx
import pytest

from statusctl.carts.base import Context, Record, Rejected, TryLater, adapter_class, make_client

from . import __path__ as carts_path
from .contract import ContractCase, shipped_payload
from .fakeserver import Answer, FakeServer, free_port_refusing


def _cases() -> list[ContractCase]:
    cases = []
    for info in pkgutil.iter_modules(carts_path):
        if info.name.startswith("fake_"):
            module = importlib.import_module(f"{__package__}.{info.name}")
            cases.append(module.CASE)
    return cases


CASES = _cases()


@pytest.fixture(params=CASES, ids=lambda c: c.cart)
def case(request: pytest.FixtureRequest) -> ContractCase:
    return request.param


@pytest.fixture
def served(case: ContractCase) -> Iterator[tuple[ContractCase, object, FakeServer]]:
    handler = case.make_fake()
    with FakeServer(handler) as server:
        yield case, handler, server


def _send(case: ContractCase, url: str, payload: dict, *, good: bool = True, uid: str = "rec-1",
          attempt: int = 1) -> Context:
    store = case.store(url, good)
    ctx = Context(store, case.secrets(good), case.mappings or {})

    async def go() -> None:
        async with make_client() as client:
            await adapter_class(case.cart)(client, ctx).deliver(Record(uid, attempt, payload, time.time()))  # type: ignore[arg-type]

    asyncio.run(go())
    return ctx


def test_ok_creates_the_effect_once(served):
    case, handler, server = served
    payload = shipped_payload()
    _send(case, server.base_url, payload)
    assert case.effects(handler, payload) == 1


def test_resend_after_a_crash_creates_no_duplicate(served):
    case, handler, server = served
    payload = shipped_payload()
    _send(case, server.base_url, payload)
    _send(case, server.base_url, payload, attempt=2)  # a resend is a later attempt of the same record
    assert case.effects(handler, payload) == 1


def test_server_error_is_transient(served):
    case, handler, server = served
    server.fail_next(Answer(500, "boom"), times=10)
    with pytest.raises(TryLater) as err:
        _send(case, server.base_url, shipped_payload())
    assert err.value.status == 500


def test_503_honours_retry_after(served):
    case, handler, server = served
    server.fail_next(Answer(503, "busy", {"Retry-After": "7"}), times=10)
    with pytest.raises(TryLater) as err:
        _send(case, server.base_url, shipped_payload())
    assert err.value.retry_after == 7


def test_unauthorised_is_permanent(served):
    case, handler, server = served
    server.fail_next(Answer(401, '{"message": "no"}', {"Content-Type": "application/json"}), times=10)
    with pytest.raises(Rejected):
        _send(case, server.base_url, shipped_payload())


def test_redirect_is_not_followed(served):
    case, handler, server = served
    server.fail_next(Answer(302, "", {"Location": "http://127.0.0.1:1/elsewhere"}), times=10)
    with pytest.raises(Rejected) as err:
        _send(case, server.base_url, shipped_payload())
    assert "redirect" in err.value.reason.lower()
    assert len(server.requests) == 1


def test_not_found_is_permanent(served):
    case, handler, server = served
    server.fail_next(Answer(404, "not here"), times=10)
    with pytest.raises(Rejected):
        _send(case, server.base_url, shipped_payload())


def test_connection_refused_is_a_network_error():
    for case in CASES:
        with pytest.raises(httpx.TransportError):
            _send(case, free_port_refusing(), shipped_payload())


def test_secrets_never_in_the_reason(served):
    case, handler, server = served
    secrets = case.secrets(True)
    echo = " ".join(secrets.values())
    server.fail_next(Answer(400, f"bad request, you sent {echo}"), times=10)
    with pytest.raises((Rejected, TryLater)) as err:
        _send(case, server.base_url, shipped_payload())
    ctx = Context(case.store(server.base_url, True), secrets)
    text = ctx.excerpt(err.value.answer) + err.value.reason
    for value in secrets.values():
        assert value not in text


def test_check_reads_harmlessly(served):
    case, handler, server = served
    if not case.testable:
        pytest.skip(f"{case.cart} has no harmless read")

    async def go(good: bool) -> str:
        ctx = Context(case.store(server.base_url, good), case.secrets(good), case.mappings or {})
        async with make_client() as client:
            return await adapter_class(case.cart)(client, ctx).check()

    assert asyncio.run(go(True))
    with pytest.raises(Rejected):
        asyncio.run(go(False))


def test_an_ok_delivery_returns_the_deciding_http_status(served):
    """`stack history` shows the status of the answer that decided an OK, for every cart alike (issue 13.19)."""
    case, handler, server = served
    store = case.store(server.base_url, True)
    ctx = Context(store, case.secrets(True), case.mappings or {})

    async def go() -> int | None:
        async with make_client() as client:
            return await adapter_class(case.cart)(client, ctx).deliver(  # type: ignore[no-any-return]
                Record("rec-status", 1, shipped_payload(), time.time()))  # type: ignore[arg-type]

    status = asyncio.run(go())
    assert isinstance(status, int) and 200 <= status < 300, status
