"""Stores: the checks of a store's settings, adding and removing stores, and the OSS choice.

The Store itself is domain (statusctl.domain.stores); the statements are statusctl.storage.stores.
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex
import time
from typing import Any
from urllib.parse import urlsplit

from statusctl.domain import limits
from statusctl.domain.errors import InputError, shown
from statusctl.domain.labels import Label, unmapped_labels
from statusctl.domain.matrix import CART_TYPES, COMMON_OPTIONS
from statusctl.domain.settings import parse_bool
from statusctl.domain.stores import OSS_CARTS, Store, destination
from statusctl.domain.urls import mask_url
from statusctl.storage import stores as stored
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")


def pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value:
            # Without an '=' (or with only base64 padding after it) the item may be a secret
            # value: never echo it, nor the part before '=' of a --secret or --secret-env.
            shown_key = f" {shown(key)}…" if sep and key and not flag.startswith("--secret") else ""
            raise InputError(f"{flag}{shown_key} must look like KEY=VALUE.")
        out[key] = value
    return out


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_http: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--url {shown(mask_url(url), 100)} must be an absolute http:// or https:// URL.")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.rpartition("@")[2].endswith(":")):
        raise InputError(f"--url {shown(mask_url(url), 100)} has a port that is not a number from 1 to 65535.")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise InputError(
            f"--url {shown(mask_url(url), 100)} uses plain http to a non-loopback host; use https or "
            "--option allow_http=true."
        )
    return url.strip()


def _check_webhook_secret(value: str, key: str) -> None:
    from statusctl.domain.webhooksecret import PREFIX, SignatureError, secret_bytes

    if not value.startswith(PREFIX):
        raise InputError(f"--secret {key}=…: a webhook secret must start with whsec_.")
    try:
        raw = secret_bytes(value)
    except SignatureError:
        raise InputError(f"--secret {key}=…: the part after whsec_ is not valid base64.") from None
    if len(raw) < 24:
        raise InputError(f"--secret {key}=…: a webhook secret must hold at least 24 bytes.")


def unset_env_warning(store: Store) -> str | None:
    """The warning for a store saved with a `--secret-env` variable not set in this shell (None: all set).

    Only a warning: the controller (cron, a service) may well have the variable this shell lacks.
    """
    unset = store.unset_envs()
    if not unset:
        return None
    names = ", ".join(f"{var} (secret {key!r})" for key, var in unset)
    several = len(unset) > 1
    return (f"Warning: environment variable{'s' if several else ''} {names} of store {store.name!r} "
            f"{'are' if several else 'is'} not set here; a controller started without "
            f"{'them' if several else 'it'} leaves this store's records waiting, and `stack status` shows "
            "the store as misconfigured.")


def check_store_name(name: str) -> str:
    """A store name: 1–50 letters, digits, '.', '_' or '-'."""
    if not _NAME.match(name):
        raise InputError(f"Store name {shown(name)} must be 1–50 letters, digits, '.', '_' or '-'.")
    return name


def check_options(cart: str, opts: dict[str, str]) -> None:
    """Every option must be one of the cart type's (or the common ones) with a valid value."""
    allowed = {**CART_TYPES[cart].options, **COMMON_OPTIONS}
    for key in opts:
        if key not in allowed:
            raise InputError(f"--option {shown(key)} is not an option of {cart}; options: {', '.join(allowed)}.")
    for key in ("timeout", "connect_timeout"):
        if key in opts:
            try:
                if not math.isfinite(float(opts[key])) or float(opts[key]) <= 0:  # nan, inf: no deadline at all
                    raise ValueError
            except ValueError:
                raise InputError(f"--option {key}={shown(opts[key])} must be a positive number of seconds.") from None
    for key in ("allow_http", "xml", "tags"):
        if key in opts and parse_bool(opts[key]) is None:
            raise InputError(f"--option {key}={shown(opts[key])} must be true or false.")
    limits.check(opts)  # max_in_flight and rate (issue 12)
    if "tracking" in opts and opts["tracking"] not in ("extension", "note"):
        raise InputError(f"--option tracking={shown(opts['tracking'])} must be extension or note.")


def build_store(
    name: str,
    cart: str,
    url: str,
    secrets: list[str],
    secret_envs: list[str],
    options: list[str],
) -> Store:
    """Validate a new store's settings into a Store in memory (nothing is saved)."""
    check_store_name(name)
    cart = cart.strip().lower()
    if cart not in CART_TYPES:
        raise InputError(f"--cart {shown(cart)} is not a cart type; cart types: {', '.join(CART_TYPES)}.")
    ctype = CART_TYPES[cart]
    opts = pairs(options, "--option")
    check_options(cart, opts)
    checked_url = check_url(url, parse_bool(opts.get("allow_http", "")) is True)
    values, envs = pairs(secrets, "--secret"), pairs(secret_envs, "--secret-env")
    for key in [*values, *envs]:
        if key not in ctype.secrets:
            # Not echoed: "--secret ck_live_…=" (base64 padding) makes the secret itself the key.
            known = ", ".join(ctype.secrets) or "none"
            raise InputError(f"--secret/--secret-env: {cart} takes the secret(s) {known}; another name was given "
                             "(not repeated here, it may be a secret).")
    specs: dict[str, dict[str, str]] = {key: {"value": value} for key, value in values.items()}
    for key, var in envs.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", var):
            # What fails the name rule is often the secret itself, pasted by mistake: never echo it.
            raise InputError(
                f"--secret-env {shown(key)}=…: what follows '=' is not an environment variable name "
                "(letters, digits, _); give the variable's name, not the secret."
            )
        if key in specs:
            raise InputError(f"Secret {shown(key)} is given both by --secret and --secret-env.")
        specs[key] = {"env": var}
    sets = ctype.required_secret_sets
    if sets and not any(all(k in specs for k in needed) for needed in sets):
        wanted = " or ".join(" and ".join(needed) for needed in sets)
        raise InputError(f"Store {name!r} ({cart}) needs the secret(s) {wanted} (--secret or --secret-env).")
    if cart in ("webhook", "oss") and "value" in specs.get("secret", {}):
        # Several space-separated secrets sign with each (key rotation).
        for part in specs["secret"]["value"].split():
            _check_webhook_secret(part, "secret")
    return Store(name, cart, checked_url, specs, opts)


def insert_store(conn: Any, store: Store) -> None:
    """Save a validated store inside the caller's writing transaction."""
    if stored.exists(conn, store.name):
        raise InputError(f"Store {store.name!r} already exists; change it with `statusctl stores set {store.name} …`.")
    stored.insert(conn, store, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def add_store(
    db: Database,
    name: str,
    cart: str,
    url: str,
    secrets: list[str],
    secret_envs: list[str],
    options: list[str],
) -> Store:
    """Validate and save a new store; a secret given by value is stored, by env only its name."""
    store = build_store(name, cart, url, secrets, secret_envs, options)
    with db.tx() as conn:
        insert_store(conn, store)
    return get_store(db, name)


def all_stores(db: Database) -> list[Store]:
    return stored.read_all(db)


def remove_store(db: Database, name: str) -> None:
    """Remove a store that has no orders and no records on the stack."""
    store = get_store(db, name)
    with db.tx() as conn:
        orders, queued = stored.uses(conn, store.name)
        if orders:
            raise InputError(f"Store {store.name!r} has {orders} order{'s' if orders != 1 else ''} and cannot be "
                             f"removed; change its settings with `statusctl stores set {store.name} …`.")
        if queued:
            raise InputError(f"Store {store.name!r} has {queued} record{'s' if queued != 1 else ''} on the stack; "
                             "drain or drop them first.")
        stored.delete(conn, store.name)


def check_oss_store(store: Store) -> None:
    """Refuse a store that cannot be the OSS (the destination of carts that cannot take updates)."""
    if not store.cart_type.accepts_updates:
        raise InputError(f"Store {store.name!r} has cart type {store.cart}, which cannot receive updates.")
    if store.cart not in OSS_CARTS:
        # Another store's orders would be sent to this shop's own cart API under their numbers.
        raise InputError(
            f"Store {store.name!r} has cart type {store.cart}; the OSS must be a store of cart type "
            f"{' or '.join(OSS_CARTS)}."
        )


def write_oss(conn: Any, name: str | None) -> str | None:
    """Set (or, with None, clear) the OSS store inside the caller's writing transaction."""
    if name is None:
        stored.write_oss(conn, None)
        return None
    store = get_store(conn, name)
    check_oss_store(store)
    stored.write_oss(conn, store.name)
    return store.name


def set_oss(db: Database, name: str | None) -> str | None:
    """Send updates of carts that cannot take them to store `name` (None: stop doing so)."""
    with db.tx() as conn:
        return write_oss(conn, name)


def oss_store(db: Database) -> str | None:
    return stored.read_oss(db)


def describe_destination(store: Store, oss: str | None) -> str:
    dest = destination(store, oss)
    if dest == store.name:
        return f"the cart itself ({store.cart})"
    if dest:
        return f"the Order Status System (store {dest!r})"
    return "nowhere: internal only (no OSS is set; `statusctl oss set STORE`)"


def label_note(store: Store, labels: list[Label] | None = None) -> str | None:
    """What happens to labels this store's cart has no equivalent for, when that needs saying.

    seti: the order labels without a `seti` value are sent by their own name, and a real
    script that does not know a status name answers OK and changes nothing.
    """
    if store.cart == "seti":
        names = unmapped_labels(labels or [], "seti")
        if not names:
            return None
        return (f"order labels without --map seti=…, sent by their own name: {', '.join(names)}. "
                "A cart script that does not know a status name answers OK and changes nothing; "
                f"map each to the script's own name, e.g. statusctl labels add {shlex.quote(names[0])} --map seti=NAME")
    if store.cart == "shopify":
        if store.flag("tags"):
            return "labels with no Shopify equivalent are written as order tags (tags=true)"
        return "labels with no Shopify equivalent stay internal (add --option tags=true to tag orders)"
    return None
