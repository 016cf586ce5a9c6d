"""Slow and idle clients cannot hold the OSS's sockets: deadlines and connection caps under uvicorn.

uvicorn closes an idle keep-alive connection only after it has answered a
request on it; a connection that sends nothing, or never finishes its headers
or body, stays open for ever, and nothing caps how many are open (its
`limit_concurrency` answers 503 to everyone once slow sockets fill it, but
closes none of them). So every connection here gets:

- a **request deadline**: from the moment it is accepted (or its previous
  answer is written) it has `request_timeout` seconds to deliver a whole
  request, headers and body; otherwise it is closed;
- an **answer deadline**: `answer_timeout` seconds for the app to answer and
  for the client to take the answer;
- a **cap per client** (`per_client` connections per IPv4 address or IPv6
  /64, the rate limit's key; proxies named in `--forwarded-allow-ips` are
  exempt), beyond which a new connection is closed at once;
- a **global cap** (`max_connections`, and never more than the file limit
  allows): at the cap, a new connection closes the connection that has waited
  longest without delivering a whole request, so slow sockets give way to a
  customer whose request arrives in one packet; if every connection is busy
  answering, the new one is closed.

The protocol is uvicorn's own h11 protocol with these rules added.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statusctl.oss.ratelimit import client_key


@dataclass(frozen=True)
class Limits:
    """How long and how many connections the OSS keeps (see the module docstring)."""

    request_timeout: float = 10.0
    answer_timeout: float = 60.0
    keep_alive: int = 5  # uvicorn's idle time between requests on one connection
    max_connections: int = 1000
    per_client: int = 32
    backlog: int = 16  # connections the kernel queues, and the most accepted in one go
    reserved_files: int = 32  # kept free for the database, the thread pool and the listening socket

    def connection_cap(self) -> int:
        """`max_connections`, lowered so that the sockets never use up the process's file limit.

        A connection closed to make room (or refused) gives its file back a few
        turns of the event loop later, while more are accepted (`backlog` a
        turn): four turns' worth are kept free as well.
        """
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - self.reserved_files - 4 * self.backlog))


class Guard:
    """The connections of one server: who is open, who is waiting for a request, per client."""

    def __init__(self, limits: Limits, trusted_proxy: Callable[[str], bool]) -> None:
        self.limits = limits
        self.cap = limits.connection_cap()
        self.trusted_proxy = trusted_proxy
        self.open: set[Any] = set()
        self.waiting: OrderedDict[Any, None] = OrderedDict()  # no whole request yet; longest waiting first
        self.clients: Counter[str] = Counter()  # open connections per client key ('' for proxies)

    def admit(self, conn: Any, host: str) -> bool:
        """Whether a new connection from `host` may stay; makes room at the global cap."""
        key = "" if self.trusted_proxy(host) else client_key(host)
        if key and self.clients[key] >= self.limits.per_client:
            return False
        if len(self.open) >= self.cap:
            if not self.waiting:
                return False  # every connection is being answered: they finish soon
            next(iter(self.waiting)).drop()
        conn.client_key = key
        self.clients[key] += 1
        self.open.add(conn)
        return True

    def waits(self, conn: Any, waiting: bool) -> None:
        """Whether `conn` is waiting for a whole request (and may make room for a newcomer)."""
        self.waiting.pop(conn, None)
        if waiting and conn in self.open:
            self.waiting[conn] = None

    def gone(self, conn: Any) -> None:
        """`conn` is closed or closing: it no longer counts."""
        if conn in self.open:
            self.open.discard(conn)
            self.waiting.pop(conn, None)
            self.clients[conn.client_key] -= 1
            if not self.clients[conn.client_key]:
                del self.clients[conn.client_key]


class _Guarded:
    """The deadlines and caps, mixed into uvicorn's h11 protocol by `protocol` (which sets the class attributes).

    Every method hands on to uvicorn's own (`super()`, the next class in the MRO) and
    keeps `guard` told which connections are open and which still wait for a request.
    """

    guard: Guard
    limits: Limits
    done: Any  # h11.DONE: the client has sent its whole request
    admitted = False
    client_key = ""
    deadline: asyncio.TimerHandle | None = None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    conn: Any  # uvicorn's h11.Connection

    def connection_made(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(self, host):
            transport.abort()
            return
        self.admitted = True
        super().connection_made(transport)  # type: ignore[misc]
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._check_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # may go on with a pipelined request
        if self.transport.is_closing():
            return
        self._wait_for_request()
        self._check_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self._set_deadline(None)
        self.guard.gone(self)
        super().connection_lost(exc)  # type: ignore[misc]

    def drop(self) -> None:
        """Close now, without a word (the client was too slow, or room is needed)."""
        self._set_deadline(None)
        self.guard.gone(self)
        if not self.transport.is_closing():
            self.transport.abort()

    def _wait_for_request(self) -> None:
        self.guard.waits(self, True)
        self._set_deadline(self.limits.request_timeout)

    def _check_request(self) -> None:
        # The whole request (headers and body) is in: the app answers, the client waits.
        if self.conn.their_state is self.done and self in self.guard.waiting:
            self.guard.waits(self, False)
            self._set_deadline(self.limits.answer_timeout)

    def _set_deadline(self, seconds: float | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if seconds is not None:
            self.deadline = self.loop.call_later(seconds, self._too_slow)

    def _too_slow(self) -> None:
        self.deadline = None
        self.drop()


def protocol(limits: Limits, trusted_proxy: Callable[[str], bool]) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the deadlines and caps of `limits`, for `uvicorn.Config(http=…)`.

    `trusted_proxy(host)` says whether a peer is a proxy named at start-up. One `Guard`
    counts the connections of every instance of the class returned.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    shared = {"guard": Guard(limits, trusted_proxy), "limits": limits, "done": h11.DONE}
    return type("GuardedH11Protocol", (_Guarded, H11Protocol), shared)
