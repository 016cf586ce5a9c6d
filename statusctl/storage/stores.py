"""The stored stores (table `stores`), the OSS choice (`meta.oss_store`) and each store's limits."""

from __future__ import annotations

import json
from typing import Any

from statusctl.domain import limits
from statusctl.domain.errors import NotFound, shown
from statusctl.domain.stores import Store, destination
from statusctl.storage import health
from statusctl.storage.rows import one, rows

OSS_KEY = "oss_store"


def _store(row: Any) -> Store:
    return Store(row["name"], row["cart"], row["url"], json.loads(row["secrets"]), json.loads(row["options"]))


def read_all(src: Any) -> list[Store]:
    """Every store, by name (on a Database or inside a transaction)."""
    return [_store(r) for r in rows(src, "SELECT * FROM stores ORDER BY name")]


def read(src: Any, name: str) -> Store | None:
    row = one(src, "SELECT * FROM stores WHERE name = ?", (name,))
    return None if row is None else _store(row)


def get_store(src: Any, name: str) -> Store:
    """The store called `name`, or NotFound (a filter naming an unknown store is refused, not empty)."""
    store = read(src, name)
    if store is None:
        raise NotFound(f"Unknown store {shown(name)}; `statusctl stores list` shows them.")
    return store


def exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone() is not None


def insert(conn: Any, store: Store, created: str) -> None:
    conn.execute(
        "INSERT INTO stores (name, cart, url, secrets, options, created) VALUES (?, ?, ?, ?, ?, ?)",
        (store.name, store.cart, store.url, json.dumps(store.secrets), json.dumps(store.options), created),
    )


def update(conn: Any, store: Store) -> bool:
    """Save a store's new URL, secrets and options (False: no such store); its health notes are forgotten,
    since a pause or a misconfiguration was about the old settings."""
    cur = conn.execute(
        "UPDATE stores SET url = ?, secrets = ?, options = ? WHERE name = ?",
        (store.url, json.dumps(store.secrets), json.dumps(store.options), store.name),
    )
    if cur.rowcount != 1:
        return False
    health.forget(conn, store.name)
    return True


def uses(conn: Any, name: str) -> tuple[int, int]:
    """(the store's orders, its records on the stack)."""
    orders = conn.execute("SELECT COUNT(*) FROM orders WHERE store = ?", (name,)).fetchone()[0]
    queued = conn.execute("SELECT COUNT(*) FROM stack WHERE destination = ?", (name,)).fetchone()[0]
    return int(orders), int(queued)


def delete(conn: Any, name: str) -> None:
    """Remove a store, the OSS choice when it named it, and its health notes."""
    conn.execute("DELETE FROM stores WHERE name = ?", (name,))
    conn.execute("DELETE FROM meta WHERE key = ? AND value = ?", (OSS_KEY, name))
    health.forget(conn, name)


def read_oss(src: Any) -> str | None:
    """The store that receives the updates of carts that cannot take them, or None."""
    row = one(src, "SELECT value FROM meta WHERE key = ?", (OSS_KEY,))
    return str(row["value"]) if row else None


def write_oss(conn: Any, name: str | None) -> None:
    """Set (None: clear) the OSS store inside the caller's writing transaction."""
    if name is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (OSS_KEY,))
        return
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (OSS_KEY, name),
    )


def destinations(conn: Any) -> tuple[dict[str, Store], dict[str, str | None]]:
    """(the stores by name, where each store's records go: a store name or None)."""
    oss = read_oss(conn)
    stores = {s.name: s for s in read_all(conn)}
    return stores, {name: destination(s, oss) for name, s in stores.items()}


def read_limits(conn: Any) -> dict[str, limits.Limits]:
    """Every store's limits (a store without options has the defaults)."""
    return {r[0]: limits.from_stored(r[1]) for r in conn.execute("SELECT name, options FROM stores")}
