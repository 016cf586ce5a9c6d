"""A store's `rate` inside one controller: every request of its adapters waits for its turn.

The claim spaces the records of a rate-limited store over every controller
(statusctl.domain.limits); within a controller, a record that needs several
requests keeps the rate too because each request waits for the store's Pacer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


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
