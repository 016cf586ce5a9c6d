"""`stores test`: a harmless read against a store's cart."""

from __future__ import annotations

import asyncio

from statusctl.domain.errors import StatusctlError
from statusctl.domain.stores import Store
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store


def test_store(db: Database, name: str) -> tuple[bool, str]:
    """(ok, what was seen or why it failed) for a saved store; the message never holds a secret."""
    return check_store(get_store(db, name))


def check_store(store: Store) -> tuple[bool, str]:
    """Test a store's settings (saved or not yet) with a harmless read; the message never holds a secret."""
    import httpx

    from statusctl.carts.base import Context, DeliveryError, adapter_class, attempt, make_client

    # Resolve the secrets first: a missing environment variable fails every send, and is
    # worth reporting even for a cart type that has no harmless read.
    try:
        secrets = store.resolve_secrets()
    except StatusctlError as exc:
        return False, str(exc)
    if not store.cart_type.has_test:
        return True, f"cart type {store.cart} has no harmless read to test with; nothing was sent."
    ctx = Context(store, secrets)

    async def go() -> str:
        async with make_client() as client:
            with attempt(ctx):
                return await adapter_class(store.cart)(client, ctx).check()

    try:
        return True, ctx.scrub(asyncio.run(go()))
    except DeliveryError as exc:
        answer = ctx.excerpt(exc.answer)
        return False, ctx.scrub(exc.reason) + (f" — answer: {answer}" if answer else "")
    except httpx.TimeoutException:
        return False, f"{store.shown_url} did not answer in time."
    except httpx.TransportError as exc:
        return False, ctx.scrub(f"cannot reach {store.shown_url}: {type(exc).__name__}: {exc}")
