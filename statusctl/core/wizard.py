"""The setup wizard's core: what it reads to ask its questions, the checks of its answers, and the save.

The wizard collects a `SetupPlan` in memory (a new store or new settings of
an existing one — same name, or same cart type and URL — UseStatusUpdates,
the OSS choice, changed status events) and `save` writes all of it in one
transaction: nothing is half-saved, and nothing at all before the operator
confirms. The store's settings are tested before saving with
`statusctl.delivery.probe.check_store` on the unsaved `Store`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from statusctl.core.events import all_events
from statusctl.core.labels import all_labels
from statusctl.core.settings import use_status_updates, write_value
from statusctl.core.storeedit import update_store
from statusctl.core.stores import all_stores, check_store_name, insert_store, oss_store, write_oss
from statusctl.domain.errors import InputError
from statusctl.domain.events import EVENT_NAMES, Event, change_event, check_event
from statusctl.domain.labels import Label
from statusctl.domain.matrix import CART_TYPES
from statusctl.domain.settings import parse_bool
from statusctl.domain.stores import OSS_CARTS, Store
from statusctl.storage import events as stored_events
from statusctl.storage.db import Database
from statusctl.storage.stores import get_store

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIELDS = {
    "item": "item_label", "item_label": "item_label", "item-label": "item_label",
    "order": "order_label", "order_label": "order_label", "order-label": "order_label",
    "fires": "fires", "fire": "fires",
    "notify": "notify", "notify_cart": "notify", "notify-cart": "notify",
}


@dataclass
class SetupState:
    """What the database holds now, read once when the wizard starts."""

    stores: list[Store]
    use_status_updates: bool
    oss: str | None
    events: dict[str, Event]
    labels: list[Label]

    @property
    def store_names(self) -> set[str]:
        return {s.name for s in self.stores}

    def oss_candidates(self, new: Store | None = None) -> list[str]:
        """Stores that may be the OSS: the existing oss/webhook stores, and the new one if it is one."""
        names = [s.name for s in self.stores if s.cart in OSS_CARTS]
        if new is not None and new.cart in OSS_CARTS:
            names.append(new.name)
        return names


def read_state(db: Database) -> SetupState:
    """The stores, UseStatusUpdates, the OSS, the events grid and the labels, as they are now."""
    return SetupState(
        stores=all_stores(db),
        use_status_updates=use_status_updates(db),
        oss=oss_store(db),
        events={e.name: e for e in all_events(db)},
        labels=all_labels(db),
    )


def suggest_name(taken: set[str], cart: str) -> str:
    """A free store name for a new store of this cart type: the cart's name, else with -2, -3, …."""
    if cart not in taken:
        return cart
    n = 2
    while f"{cart}-{n}" in taken:
        n += 1
    return f"{cart}-{n}"


def check_new_name(state: SetupState, name: str) -> str:
    """A valid store name that no store has yet."""
    clean = check_store_name(name.strip())
    if clean in state.store_names:
        raise InputError(f"Store {clean!r} already exists; choose another name.")
    return clean


def check_target_name(state: SetupState, name: str, cart: str) -> tuple[str, Store | None]:
    """A valid store name, and the existing store of that name to edit (None: a new store).

    An existing store of another cart type is refused: its orders belong to that cart.
    """
    clean = check_store_name(name.strip())
    existing = next((s for s in state.stores if s.name == clean), None)
    if existing is not None and existing.cart != cart:
        raise InputError(f"Store {clean!r} already exists with cart type {existing.cart}; choose another name "
                         f"(or change it with `statusctl stores set {clean} …`).")
    return clean, existing


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def find_target(state: SetupState, name: str | None, cart: str, url: str | None) -> tuple[str, Store | None]:
    """The store `setup` works on without asking: the one named, else the one with this cart type and
    URL (re-running setup edits it instead of adding `woocommerce-2`), else a new one (suggested name)."""
    if name is not None:
        return check_target_name(state, name, cart)
    if url is not None:
        for store in state.stores:
            if store.cart == cart and _same_url(store.url, url):
                return store.name, store
    return suggest_name(state.store_names, cart), None


def store_answers(store: Store) -> dict[str, list[str]]:
    """An existing store's settings as the wizard's answers (KEY=VALUE items), to edit them."""
    return {
        "secret": [f"{k}={v['value']}" for k, v in store.secrets.items() if "value" in v],
        "secret_env": [f"{k}={v['env']}" for k, v in store.secrets.items() if "env" in v],
        "option": [f"{k}={v}" for k, v in store.options.items()],
    }


def check_oss_choice(candidates: list[str], oss: str) -> str:
    """`--oss STORE`: one of the oss or webhook stores (the new store counts when it is one)."""
    if oss not in candidates:
        raise InputError(
            f"--oss {oss!r} is not an oss or webhook store; candidates: "
            f"{', '.join(candidates) or 'none (add a store of cart type oss)'}."
        )
    return oss


def check_cart(text: str) -> str:
    """A cart type of the matrix, by name or by its number (1-based) in the matrix."""
    clean = text.strip().lower()
    names = list(CART_TYPES)
    if clean.isdigit() and 1 <= int(clean) <= len(names):
        return names[int(clean) - 1]
    if clean not in CART_TYPES:
        raise InputError(f"{text.strip()!r} is not a cart type; cart types: {', '.join(names)}.")
    return clean


def check_env_name(text: str) -> str:
    clean = text.strip()
    if not _ENV_NAME.match(clean):
        raise InputError(f"{clean!r} is not an environment variable name (letters, digits and _).")
    return clean


def parse_event_change(text: str) -> tuple[str, str, str]:
    """`EVENT.FIELD=VALUE` (FIELD: item, order, fires, notify) → (event, field, value)."""
    head, sep, value = text.partition("=")
    event, dot, name = head.strip().partition(".")
    fieldname = _FIELDS.get(name.strip().lower())
    if not sep or not dot or fieldname is None:
        raise InputError(
            f"--event {text!r} must look like EVENT.FIELD=VALUE with FIELD item, order, fires or notify, "
            "e.g. item-shipped.notify=no."
        )
    return check_event(event), fieldname, value


def apply_event_changes(labels: list[Label], events: dict[str, Event], changes: list[str]) -> dict[str, Event]:
    """The events grid after `--event EVENT.FIELD=VALUE` changes (a new dict; the given one is untouched)."""
    out = dict(events)
    for text in changes:
        name, fieldname, value = parse_event_change(text)
        if fieldname == "item_label":
            out[name] = change_event(labels, out[name], item_label=value)
        elif fieldname == "order_label":
            out[name] = change_event(labels, out[name], order_label=value)
        else:
            flag = parse_bool(value)
            if flag is None:
                raise InputError(f"--event {text!r}: {fieldname} must be yes or no.")
            if fieldname == "fires":
                out[name] = change_event(labels, out[name], fires=flag)
            else:
                out[name] = change_event(labels, out[name], notify=flag)
    return out


def changed_events(before: dict[str, Event], after: dict[str, Event]) -> list[Event]:
    """The events of `after` that differ from `before`, in grid order."""
    return [after[n] for n in EVENT_NAMES if n in after and after[n] != before.get(n)]


@dataclass
class SetupPlan:
    """Everything the wizard will save, collected in memory."""

    store: Store
    existing: Store | None = None  # the store whose settings `store` replaces (None: a new store)
    use_status_updates: bool | None = None  # None: leave as it is
    change_oss: bool = False
    oss: str | None = None  # with change_oss: the OSS store, or None to have none
    events: list[Event] = field(default_factory=list)  # the changed events only


def save(db: Database, plan: SetupPlan) -> Store:
    """Save the store, UseStatusUpdates, the OSS choice and the changed events in ONE transaction."""
    with db.tx() as conn:
        if plan.existing is None:
            insert_store(conn, plan.store)
        else:
            update_store(conn, plan.store)
        if plan.use_status_updates is not None:
            write_value(conn, "UseStatusUpdates", str(plan.use_status_updates))
        if plan.change_oss:
            write_oss(conn, plan.oss)
        for e in plan.events:
            stored_events.write(conn, e)
    return get_store(db, plan.store.name)
