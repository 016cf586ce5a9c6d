"""Per-client token buckets for order lookups (slows down guessing order numbers and postal codes)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


def client_key(host: str | None) -> str:
    """The bucket a client address falls in: the address for IPv4, its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64, so counting single
    addresses would let one client rotate through billions of them. Anything
    that is not an address (a forwarded header a proxy passed on as the
    client wrote it) shares one bucket: made-up values never get fresh ones.
    """
    if not host:
        return "unknown"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """`capacity` lookups at once, refilled at `capacity` per `per_seconds`, per client key."""

    def __init__(
        self,
        capacity: int = 10,
        per_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if capacity < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs capacity >= 1 and a positive period")
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one lookup; 0.0 when allowed, else the seconds until the next one is."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)  # re-inserted last: least recently seen go first
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate
