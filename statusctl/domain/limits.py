"""Per-store sending limits: the `max_in_flight` and `rate` store options, their defaults and checks.

`max_in_flight` bounds the records of one destination under a live lease, counted
over every controller sharing the database. `rate` spaces the sends: the claim
gives each record a start time (from `store_health.next_start`, so several
controllers share the pace), and within a controller every request of the
store's adapters waits for its turn (statusctl.delivery.pacing), so an adapter
that needs several requests for one record keeps the rate too. A cart's own
rate-limit headers apply on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def from_stored(options: str) -> Limits:
    """The limits of a store's stored options (JSON text); text that is not a JSON object gives the defaults."""
    import json

    try:
        parsed = json.loads(options)
    except ValueError:
        return DEFAULT
    return from_options({str(k): str(v) for k, v in parsed.items()}) if isinstance(parsed, dict) else DEFAULT
