"""The stored system parameters (table `settings`): what is stored, and writing one value."""

from __future__ import annotations

from typing import Any

from statusctl.domain.settings import StackSettings, stack_settings_of


def stored(db: Any) -> dict[str, str]:
    """The stored (normalised) values by parameter name; a parameter never set is absent."""
    return {str(r["name"]): str(r["value"]) for r in db.query("SELECT name, value FROM settings")}


def write(conn: Any, name: str, value: str) -> None:
    """Store a checked value inside the caller's writing transaction."""
    conn.execute(
        "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def stack_settings(db: Any) -> StackSettings:
    """The parameters the stack and the controller read, typed (defaults for those never set)."""
    return stack_settings_of(stored(db))
