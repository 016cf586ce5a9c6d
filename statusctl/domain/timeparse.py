"""Parsing `--since` values: an ISO time or an age like 30m, 2h, 1d."""

from __future__ import annotations

import datetime as dt
import re
import time

from statusctl.domain.errors import InputError, shown

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds for `text`."""
    text = text.strip()
    match = _AGE.match(text)
    if match:
        return (now if now is not None else time.time()) - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--since {shown(text)} must be an ISO time (2026-11-26T08:00) or an age (30m, 2h, 1d).") from None
    try:
        if value.tzinfo is None:
            value = value.astimezone()
        return value.timestamp()
    except (ValueError, OverflowError, OSError):  # year 1 in a time zone behind UTC, past time_t…
        raise InputError(f"--since {shown(text)} is a time out of range.") from None
