"""System parameters: reading and setting them by name, and the advice on a risky value.

The names, defaults and checks are domain data (statusctl.domain.settings); what is
stored is read and written by statusctl.storage.settings.
"""

from __future__ import annotations

from statusctl.domain.errors import ConfigError, shown
from statusctl.domain.settings import Param, StackSettings, find_param, with_defaults
from statusctl.storage import settings as stored_settings
from statusctl.storage.db import Database
from statusctl.storage.settings import stack_settings

# The controller and `stack status` read the stack's parameters through here too.
__all__ = ["StackSettings", "advice", "all_values", "canonical_name", "get_raw", "set_value", "stack_settings",
           "use_status_updates", "write_value"]


def canonical_name(name: str) -> str:
    """The parameter's name as statusctl spells it (names are matched in any case)."""
    return find_param(name).name


def get_raw(db: Database, name: str) -> str:
    """The stored (normalised) text of a parameter, or its default."""
    param = find_param(name)
    return stored_settings.stored(db).get(param.name, param.default)


def all_values(db: Database) -> list[tuple[Param, str]]:
    """Every parameter with its current value, in display order."""
    return with_defaults(stored_settings.stored(db))


def write_value(conn: object, name: str, value: str) -> tuple[str, str]:
    """Validate and store a parameter inside the caller's writing transaction; returns (name, normalised value)."""
    param = find_param(name)
    try:
        normalised = param.check(value)
    except ValueError as exc:
        raise ConfigError(f"Bad value {shown(value)} for {param.name}: expected {exc}.") from None
    stored_settings.write(conn, param.name, normalised)
    return param.name, normalised


def set_value(db: Database, name: str, value: str) -> tuple[str, str]:
    """Validate and store a parameter; returns (canonical name, normalised value)."""
    with db.tx() as conn:
        return write_value(conn, name, value)


def advice(name: str, value: str) -> str | None:
    """A warning about a valid but risky value, or None."""
    if name == "StackLeaseSeconds":
        from statusctl.storage.db import busy_timeout

        needed = 30.0 + busy_timeout()  # the default store timeout plus the lock wait
        if float(value) <= needed:
            return (
                f"StackLeaseSeconds {value} is not longer than a send's timeout (30 s unless a store's timeout "
                f"option says otherwise) plus the database busy timeout ({busy_timeout():g} s): a slow send may "
                "outlive its lease and be sent twice."
            )
    return None


def use_status_updates(db: Database) -> bool:
    return get_raw(db, "UseStatusUpdates") == "true"
