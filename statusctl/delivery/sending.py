"""One attempt of one claimed record: wait for its start, send it through its cart's adapter, judge the end.

The controller runs many of these at once (one asyncio task each) and settles
what they return; nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from statusctl.delivery.destinations import Destinations
from statusctl.delivery.drainreport import DrainReport
from statusctl.domain.errors import StatusctlError
from statusctl.storage import stack


async def send(dests: Destinations, report: DrainReport, client: Any, claimed: stack.Claimed, *,
               skew: float) -> stack.Outcome:
    """Send `claimed` on `client` and say how it ended (never raises for the cart's or the adapter's faults).

    `skew` is the database's clock minus this machine's: the start the claim gave
    the record (its store's rate) is a time by the database's clock.
    """
    import httpx

    from statusctl.carts.base import LONGEST_HOLD_S, Record, Rejected, TryLater, attempt

    started = time.monotonic()

    def done(kind: str, **kw: Any) -> stack.Outcome:
        return stack.Outcome(claimed, kind, duration_ms=int((time.monotonic() - started) * 1000), **kw)

    try:
        adapter = dests.target(client, claimed.destination)
    except StatusctlError as exc:
        # This machine cannot use the store (a --secret-env variable it lacks): the records
        # wait, uncounted, and `stack status` says why; the cart never refused anything.
        dests.found_unusable(claimed.destination)
        report.misconfigured[claimed.destination] = str(exc)
        return done("wait", reason=str(exc))
    ctx = adapter.ctx
    ahead = claimed.start_at - (time.time() + skew)
    if ahead > 0:
        await asyncio.sleep(ahead)
    wait = ctx.hold_until - time.monotonic()
    if wait > LONGEST_HOLD_S:
        return done("retry", reason="rate limited by the cart", retry_after=wait)
    if wait > 0:
        await asyncio.sleep(wait)
    try:
        with attempt(ctx):  # the store's timeout bounds the whole attempt, all its requests together
            status = await adapter.deliver(Record(claimed.uid, claimed.attempts, claimed.payload, claimed.queued,
                                                  claimed.claims))
    except TryLater as exc:
        return done("retry", status=exc.status, reason=ctx.scrub(exc.reason), answer=ctx.excerpt(exc.answer),
                    retry_after=exc.retry_after)
    except Rejected as exc:
        return done("failed", status=exc.status, reason=ctx.scrub(exc.reason), answer=ctx.excerpt(exc.answer))
    except httpx.TimeoutException as exc:
        return done("retry", reason=f"timed out ({type(exc).__name__})", transport=True)
    except httpx.TransportError as exc:
        return done("retry", reason=ctx.scrub(f"network error: {type(exc).__name__}: {exc}")[:200], transport=True)
    except Exception as exc:  # an adapter bug must not kill the controller or lose the record
        return done("failed", reason=ctx.scrub(f"adapter error: {type(exc).__name__}: {exc}")[:200])
    return done("ok", status=status if isinstance(status, int) else None)
