"""`statusctl` with a SIGKILL armed at one named moment of the stack controller (the crash suite).

    KILL_AT=MOMENT:N python tests/reliability/killpoints.py --db DB stack run --watch

The process runs the real command line; it only wraps three controller steps
so that it kills itself (SIGKILL: no handler, no cleanup, no flush) exactly when
the N-th such moment comes:

- `before-claim`: before the N-th claim transaction (sends that finished since
  the last turn are then neither settled nor forgotten by the receiver);
- `after-ok`: when the N-th send was answered OK, before it is settled: the
  receiver has the update, the record is still on the stack;
- `in-settle`: inside the N-th transaction that settles an OK, after its DELETEs,
  before COMMIT (SQLite must roll it back: the records stay and are resent);
- `commit-race`: a timer started at the end of the N-th settle that fires a few
  hundred microseconds later, racing the claim and the COMMIT itself.

Without KILL_AT it is plain `statusctl`. Test-only code stays here, out of statusctl.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str, nth: int) -> None:
    from statusctl.delivery import controller
    from statusctl.storage import stack

    seen = 0

    def due() -> bool:
        nonlocal seen
        seen += 1
        return seen == nth

    if moment == "before-claim":
        turn = controller.Controller._turn

        def _turn(self: Any, outcomes: list[Any], room: int) -> Any:
            if room > 0 and due():
                _die()
            return turn(self, outcomes, room)

        controller.Controller._turn = _turn  # type: ignore[method-assign]
    elif moment == "after-ok":
        send = controller.Controller._send

        async def _send(self: Any, client: Any, claimed: Any) -> Any:
            outcome = await send(self, client, claimed)
            if outcome.kind == "ok" and due():
                _die()
            return outcome

        controller.Controller._send = _send  # type: ignore[method-assign]
    elif moment in ("in-settle", "commit-race"):
        settle = stack.settle

        def _settle(conn: Any, outcomes: list[Any], owner: str, **kw: Any) -> list[Any]:
            written = settle(conn, outcomes, owner, **kw)
            if any(o.kind == "ok" for o in outcomes) and due():
                if moment == "in-settle":
                    _die()
                threading.Timer(random.uniform(0.0, 0.0008), _die).start()
            return written

        stack.settle = _settle
    else:
        raise SystemExit(f"unknown kill moment {moment!r}")


def main() -> None:
    spec = os.environ.get("KILL_AT")
    if spec:
        moment, _, nth = spec.partition(":")
        arm(moment, int(nth or "1"))
    from statusctl.cli.main import run

    sys.argv[0] = "statusctl"
    run()


if __name__ == "__main__":
    main()
