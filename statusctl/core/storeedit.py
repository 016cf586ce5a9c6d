"""`stores set`: change a store in place, tested like `stores test` before anything is saved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statusctl.core.stores import build_store, pairs
from statusctl.domain.errors import ConfigError, InputError, NotFound, shown
from statusctl.domain.stores import Store
from statusctl.storage import stores as stored
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store

# How the new settings are tested before they are saved: (ok, message). The CLI passes
# statusctl.delivery.probe.check_store (core does not talk to carts); None saves untested.
Check = Callable[[Store], tuple[bool, str]]


def changed_store(old: Store, url: str | None, secrets: list[str], secret_envs: list[str], options: list[str]) -> Store:
    """`old` with these settings changed (a secret given replaces the same key's value or variable),
    validated as a whole exactly as `stores add` validates a new store (nothing is saved)."""
    values = {k: v["value"] for k, v in old.secrets.items() if "value" in v}
    envs = {k: v["env"] for k, v in old.secrets.items() if "env" in v}
    for key, value in pairs(secrets, "--secret").items():
        values[key] = value
        envs.pop(key, None)
    for key, var in pairs(secret_envs, "--secret-env").items():
        envs[key] = var
        values.pop(key, None)
    opts = {**old.options, **pairs(options, "--option")}
    return build_store(old.name, old.cart, old.url if url is None else url, [f"{k}={v}" for k, v in values.items()],
                       [f"{k}={v}" for k, v in envs.items()], [f"{k}={v}" for k, v in opts.items()])


def update_store(conn: Any, store: Store) -> None:
    """Save a validated store's new settings inside the caller's writing transaction."""
    if not stored.update(conn, store):
        raise NotFound(f"Unknown store {shown(store.name)}; `statusctl stores list` shows them.")


def what_changed(old: Store, new: Store) -> list[str]:
    """The settings that differ, as `url`, `secret KEY`, `option KEY` (secrets never shown)."""
    out = ["url"] if old.url != new.url else []
    out += [f"secret {k}" for k in sorted({*old.secrets, *new.secrets}) if old.secrets.get(k) != new.secrets.get(k)]
    out += [f"option {k}" for k in sorted({*old.options, *new.options}) if old.options.get(k) != new.options.get(k)]
    return out


def set_store(
    db: Database,
    name: str,
    url: str | None,
    secrets: list[str],
    secret_envs: list[str],
    options: list[str],
    *,
    check: Check | None,
) -> tuple[Store, list[str], str | None]:
    """Change a store in place: (the store, what changed, the check's message or None without a check).

    The new settings are checked (like `stores test`) before anything is saved; when the check
    fails nothing is changed. Its orders and the records on the stack stay as they are.
    """
    if url is None and not (secrets or secret_envs or options):
        raise InputError("Nothing to change: give --url, --secret, --secret-env or --option.")
    old = get_store(db, name)
    new = changed_store(old, url, secrets, secret_envs, options)
    message = None
    if check is not None:
        ok, message = check(new)
        if not ok:
            raise ConfigError(f"Testing the new settings of store {old.name!r} failed: {message.rstrip('.')}; "
                              "nothing was changed (fix them, or add --no-test).")
    with db.tx() as conn:
        update_store(conn, new)
    return get_store(db, name), what_changed(old, new), message
