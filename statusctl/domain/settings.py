"""System parameters: names, defaults, the check of each value and a one-line meaning each.

What is stored lives in statusctl.storage.settings; the rules about setting a
value (and the advice on a risky one) in statusctl.core.settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from statusctl.domain.errors import NotFound, shown

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_bool(text: str) -> bool | None:
    """true/false/yes/no/1/0 in any case; None when it is none of them."""
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return None


def _bool(text: str) -> str:
    value = parse_bool(text)
    if value is None:
        raise ValueError("true or false (also yes/no, 1/0)")
    return "true" if value else "false"


def _int(minimum: int, maximum: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"a whole number from {minimum} to {maximum}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"a whole number from {minimum} to {maximum}")
        return str(value)

    return check


def _schedule(text: str) -> str:
    form = "seconds separated by commas, e.g. 10,60,300 (decimals allowed, each from 0 to 604800, 7 days)"
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(form) from None
    # 1e300 was taken: the record's next attempt then lay past what a clock can show.
    if not values or any(not 0 <= v <= 604800 for v in values):  # also refuses nan and inf
        raise ValueError(form)
    return ",".join(f"{v:g}" for v in values)


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    meaning: str
    check: Callable[[str], str]


PARAMS: dict[str, Param] = {
    p.name: p
    for p in [
        Param("UseStatusUpdates", "false", "Master switch: while false no status event fires and nothing is queued.", _bool),
        Param("StackMaxAttempts", "8", "Attempts before a record that keeps failing transiently is marked failed.", _int(1, 1000)),
        Param(
            "StackRetrySchedule",
            "10,60,300,1800,7200,18000,36000,36000",
            "Seconds to wait before each retry (the last one repeats); jitter is added.",
            _schedule,
        ),
        Param("StackLeaseSeconds", "120", "How long a controller owns a claimed record; must exceed the HTTP timeout.", _int(1, 86400)),
        Param("StackConcurrency", "8", "Orders sent in parallel by one controller (records of one order stay in order).", _int(1, 256)),
        Param("StackAlertAge", "3600", "Seconds a queued record may wait before `stack status --check` alerts.", _int(1, 10_000_000)),
        Param("StackHistoryDays", "90", "Days of delivery history kept; older attempts are pruned by the controllers.",
              _int(1, 36500)),
    ]
}


def find_param(name: str) -> Param:
    """The parameter called `name` in any case, or NotFound."""
    for key, param in PARAMS.items():
        if key.lower() == name.strip().lower():
            return param
    raise NotFound(f"Unknown system parameter {shown(name)}; valid names: {', '.join(PARAMS)}.")


def with_defaults(stored: dict[str, str]) -> list[tuple[Param, str]]:
    """Every parameter with its stored value or its default, in display order."""
    return [(p, stored.get(p.name, p.default)) for p in PARAMS.values()]


@dataclass(frozen=True)
class StackSettings:
    """The parameters the stack and the controller read, typed."""

    max_attempts: int
    retry_schedule: tuple[float, ...]
    lease_seconds: float
    concurrency: int
    alert_age: float
    history_days: int = 90


def stack_settings_of(stored: dict[str, str]) -> StackSettings:
    """The stack's parameters from the stored values (a parameter not stored has its default)."""
    values = {p.name: v for p, v in with_defaults(stored)}
    return StackSettings(
        max_attempts=int(values["StackMaxAttempts"]),
        retry_schedule=tuple(float(x) for x in values["StackRetrySchedule"].split(",")),
        lease_seconds=float(values["StackLeaseSeconds"]),
        concurrency=int(values["StackConcurrency"]),
        alert_age=float(values["StackAlertAge"]),
        history_days=int(values["StackHistoryDays"]),
    )
