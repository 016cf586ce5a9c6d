"""Signed `/o/<token>` links that open an order's status page without typing.

The token names the order (store and number) and carries an HMAC over the
store, the number and the order's normalised postal code, so a link stops
working if the order's postal code changes and cannot be forged or edited.

The link key is derived from the OSS store's Standard Webhooks secret, so the
order manager (which holds that secret to sign updates) and the OSS (which
holds it to verify them) share it without another setting:

    link_key = HMAC-SHA256(key=base64-decoded secret after "whsec_",
                           msg=b"statusctl oss link v1")

With several secrets configured (key rotation) the OSS accepts links made with
any of them and makes new ones with the first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from statusctl.domain.webhooksecret import secret_bytes

LINK_KEY_INFO = b"statusctl oss link v1"
MAC_BYTES = 16  # 128-bit tag: plenty against forgery, keeps the URL short
_SEP = "\x1f"  # cannot occur in a store name or order number that came through JSON validation


def derive_link_key(secret: str) -> bytes:
    """The link key for a `whsec_…` webhook secret (see the module docstring)."""
    return hmac.new(secret_bytes(secret), LINK_KEY_INFO, hashlib.sha256).digest()


def number_key(number: str) -> str:
    """An order number as customers type it: trimmed, upper case, without a leading '#'."""
    return number.strip().lstrip("#").strip().upper()


def postal_key(postal: str) -> str:
    """A postal code without spaces or hyphens, upper case ('sw1a 1aa' == 'SW1A1AA')."""
    return re.sub(r"[\s\-]", "", postal).upper()


_COMPARE_KEY = secrets.token_bytes(32)


def _digest(text: str) -> bytes:
    return hmac.new(_COMPARE_KEY, text.encode(), hashlib.sha256).digest()


def postal_matches(stored_key: str, given: str) -> bool:
    """Whether a typed postal code matches the order's, doing the same work whatever both are.

    A US ZIP+4 on the order (9 digits) also matches its 5-digit ZIP. An order
    without a postal code never matches a typed one. Both sides are compared
    as keyed digests, so the comparison takes the same time for any lengths.
    """
    typed = postal_key(given)
    zip_plus_4 = stored_key.isdigit() & (len(stored_key) == 9) & (len(typed) == 5)
    stored = stored_key[:5] if zip_plus_4 else stored_key
    return hmac.compare_digest(_digest(stored), _digest(typed)) & bool(typed)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, store: str, number: str, postal: str) -> bytes:
    msg = _SEP.join((store, number_key(number), postal_key(postal))).encode()
    return hmac.new(key, msg, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(number: str, postal: str, key: bytes, *, store: str = "") -> str:
    """The token for `/o/<token>`; `store` may be left empty when order numbers are unique."""
    name = _b64(_SEP.join((store, number_key(number))).encode())
    return name + "." + _b64(_mac(key, store, number, postal))


def make_link(number: str, postal: str, key: bytes, *, store: str = "", base_url: str = "") -> str:
    """The signed link to an order's status page: `{base_url}/o/<token>`."""
    return f"{base_url.rstrip('/')}/o/{make_token(number, postal, key, store=store)}"


@dataclass(frozen=True)
class Token:
    """A token's claimed order; `matches` checks it against the order's postal code."""

    store: str
    number: str
    mac: bytes

    def matches(self, postal: str, keys: Iterable[bytes]) -> bool:
        """True when the tag was made with one of `keys` for this order and postal code."""
        found = False
        for key in keys:
            # No early exit: the time taken does not tell which key matched.
            found |= hmac.compare_digest(_mac(key, self.store, self.number, postal), self.mac)
        return found


def parse_token(token: str) -> Token | None:
    """The order a token names, or None when it is malformed (not yet checked: see `Token.matches`)."""
    name, dot, tag = token.partition(".")
    if not dot or not name or not tag or len(token) > 600:
        return None
    try:
        raw_name, mac = _unb64(name), _unb64(tag)
        store, sep, number = raw_name.decode().partition(_SEP)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Only the canonical spelling: base64 has spare bits, and one order gets one link.
    if _b64(raw_name) != name or _b64(mac) != tag:
        return None
    if not sep or not number or len(mac) != MAC_BYTES:
        return None
    return Token(store, number, mac)
