"""A store: a cart type, a URL, secrets (stored values or named environment variables) and options.

Checking a new store's settings is statusctl.core.stores; storing it, statusctl.storage.stores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from statusctl.domain.errors import ConfigError
from statusctl.domain.matrix import CART_TYPES, CartType
from statusctl.domain.settings import parse_bool
from statusctl.domain.urls import MASK, mask_url, url_credentials

OSS_CARTS = ("oss", "webhook")  # cart types that can receive other stores' updates


@dataclass
class Store:
    name: str
    cart: str
    url: str
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {"value"|"env": ...}
    options: dict[str, str] = field(default_factory=dict)

    @property
    def cart_type(self) -> CartType:
        return CART_TYPES[self.cart]

    @property
    def shown_url(self) -> str:
        """The URL as it may be shown anywhere: credentials in it masked like secrets."""
        return mask_url(self.url)

    def masked_secrets(self) -> dict[str, str]:
        """Secrets as they may be shown anywhere: stored values masked, env names shown."""
        return {k: (f"env:{v['env']}" if "env" in v else MASK) for k, v in sorted(self.secrets.items())}

    def resolve_secrets(self) -> dict[str, str]:
        """The secrets' real values; a missing environment variable is a ConfigError."""
        out = {}
        for key, spec in self.secrets.items():
            if "value" in spec:
                out[key] = spec["value"]
                continue
            value = os.environ.get(spec["env"])
            if not value:
                raise ConfigError(
                    f"Store {self.name!r}: environment variable {spec['env']} (secret {key!r}) is not set."
                )
            out[key] = value
        # Credentials inside the URL are scrubbed from answers and errors like the secrets.
        out.update({f"_url_{n}": v for n, v in enumerate(url_credentials(self.url))})
        return out

    def unset_envs(self) -> list[tuple[str, str]]:
        """(secret, variable) of each secret named by an environment variable that is not set here."""
        return [(key, spec["env"]) for key, spec in sorted(self.secrets.items())
                if "env" in spec and not os.environ.get(spec["env"])]

    def option(self, key: str, default: str = "") -> str:
        return self.options.get(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        value = parse_bool(self.options.get(key, ""))
        return default if value is None else value

    def float_option(self, key: str, default: float) -> float:
        try:
            return float(self.options[key])
        except (KeyError, ValueError):
            return default


def destination(store: Store, oss: str | None) -> str | None:
    """Where a store's records go: the store itself, the OSS store, or None (internal only)."""
    if store.cart_type.accepts_updates:
        return store.name
    return oss
