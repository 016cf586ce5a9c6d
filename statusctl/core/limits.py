"""Per-store sending limits: the `max_in_flight` and `rate` store options, their defaults and checks.

`max_in_flight` bounds the records of one destination under a live lease, counted
over every controller sharing the database. `rate` spaces the sends: the claim
gives each record a start time (from `store_health.next_start`, so several
controllers share the pace), and within a controller every request of the
store's adapters waits for its turn (`PacedClient`), so an adapter that needs
several requests for one record keeps the rate too. A cart's own rate-limit
headers apply on top.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from statusctl.domain.errors import InputError, shown

# Four controllers at the default StackConcurrency: by default the limit is the controllers' own, and
# controllers sharing one store are not starved by one of them keeping every slot (the contention suite).
DEFAULT_MAX_IN_FLIGHT = 32
MAX_IN_FLIGHT_RANGE = (1, 256)
RATE_RANGE = (0.001, 10_000.0)


@dataclass(frozen=True)
class Limits:
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    rate: float | None = None  # sends per second; None: no limit of ours

    def as_dict(self) -> dict[str, float | None]:
        return {"max_in_flight": self.max_in_flight, "rate": self.rate}


DEFAULT = Limits()


def check(options: dict[str, str]) -> None:
    """Refuse a `max_in_flight` or `rate` option that is not a number in range (InputError)."""
    if "max_in_flight" in options:
        lo, hi = MAX_IN_FLIGHT_RANGE
        raw = options["max_in_flight"]
        digits = raw.strip()  # isdigit() alone takes '²' (int() refuses it), int() refuses 4301 digits
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 9) or not lo <= int(digits) <= hi:
            raise InputError(f"--option max_in_flight={shown(raw)} must be a whole number from {lo} to {hi}.")
    if "rate" in options:
        lo_r, hi_r = RATE_RANGE
        raw = options["rate"]
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not lo_r <= value <= hi_r:  # also refuses nan and inf
            raise InputError(f"--option rate={shown(raw)} must be requests per second from {lo_r:g} to {hi_r:g}.")


def from_options(options: dict[str, str]) -> Limits:
    """The limits a store's options set; a value that does not parse is its default."""
    try:
        check(options)
    except InputError:
        options = {k: v for k, v in options.items() if k not in ("max_in_flight", "rate")}
    rate = float(options["rate"]) if "rate" in options else None
    return Limits(int(options.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)), rate)


def read_all(conn: sqlite3.Connection) -> dict[str, Limits]:
    """Every store's limits (a store without options has the defaults)."""
    out = {}
    for name, options in conn.execute("SELECT name, options FROM stores"):
        try:
            parsed = json.loads(options)
        except ValueError:
            parsed = {}
        out[name] = from_options({str(k): str(v) for k, v in parsed.items()}) if isinstance(parsed, dict) else DEFAULT
    return out


class Pacer:
    """One controller's requests to one store, at most `rate` per second, each counted from when it went."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.next = 0.0  # time.monotonic() of the next allowed request
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            delay = self.next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # From when this request really goes: a send held up (the event loop busy with the
            # database) does not let the next one follow it closer than the gap.
            self.next = time.monotonic() + self.gap


class PacedClient:
    """An HTTP client whose requests wait for the store's Pacer; everything else is the client's.

    Both ways an adapter sends go through here: `request`, and `send` of a built
    request (the bounded-read path of statusctl.carts.base). The client's own
    `request` calls its own `send`, so no request waits twice.
    """

    def __init__(self, client: Any, pacer: Pacer) -> None:
        self._client = client
        self._pacer = pacer

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        await self._pacer.wait()
        return await self._client.request(*args, **kwargs)

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await self._pacer.wait()
        return await self._client.send(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
