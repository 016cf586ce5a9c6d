"""A small base for stateful vendor fakes: routes by method and path pattern, one lock, a request log.

A subclass lists `routes` as (method, regex on the path after `prefix`, handler name); each
handler gets the request and the regex groups and returns an `Answer`. `authorise()` runs
first (return an Answer to refuse); `no_route()` answers what matches nothing.
`fail_on()` makes one route answer a fault (say, after an earlier write went through).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from .fakeserver import Answer, Request

Route = tuple[str, str, str]


class VendorFake:
    prefix: str = ""
    routes: ClassVar[list[Route]] = []
    public: ClassVar[frozenset[str]] = frozenset()  # handler names that need no credentials

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, Any]] = []  # (method, path, decoded JSON body) of routed requests
        self._compiled = [(m, re.compile(f"^{p}$"), h) for m, p, h in self.routes]
        self._faults: list[list[Any]] = []  # [method, compiled path, answer, times left, to let pass]

    def fail_on(self, method: str, pattern: str, answer: Answer, times: int = 1, after: int = 0) -> None:
        """Let `after` matching requests through, then answer the next `times` with `answer`."""
        with self.lock:
            self._faults.append([method, re.compile(f"^{pattern}$"), answer, times, after])

    def __call__(self, request: Request) -> Answer:
        with self.lock:
            return self.decorate(self.route(request))

    def route(self, request: Request) -> Answer:
        if not request.path.startswith(self.prefix):
            return self.no_route(request)
        path = request.path[len(self.prefix):]
        allowed = []
        for method, pattern, name in self._compiled:
            match = pattern.match(path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            if name not in self.public:
                refused = self.authorise(request)
                if refused is not None:
                    return refused
            body = None
            if request.body:
                try:
                    body = request.json()
                except ValueError:
                    return self.bad_body(request)
            self.seen.append((request.method, path, body))
            for fault in self._faults:
                if fault[3] > 0 and fault[0] == request.method and fault[1].match(path):
                    if fault[4] > 0:
                        fault[4] -= 1
                        continue
                    fault[3] -= 1
                    return fault[2]  # type: ignore[no-any-return]
            handler: Callable[..., Answer] = getattr(self, name)
            return handler(request, body, *match.groups())
        return self.no_route(request) if not allowed else self.wrong_method(request, allowed)

    def calls(self, method: str, pattern: str) -> list[Any]:
        """Bodies of the routed requests with this method whose path matches `pattern`."""
        regex = re.compile(f"^{pattern}$")
        return [body for m, path, body in self.seen if m == method and regex.match(path)]

    # Hooks -----------------------------------------------------------------------

    def authorise(self, request: Request) -> Answer | None:
        return None

    def decorate(self, answer: Answer) -> Answer:
        return answer

    def no_route(self, request: Request) -> Answer:
        return Answer(404, {"message": "no route"})

    def wrong_method(self, request: Request, allowed: list[str]) -> Answer:
        return self.no_route(request)

    def bad_body(self, request: Request) -> Answer:
        return Answer(400, {"message": "body is not JSON"})
