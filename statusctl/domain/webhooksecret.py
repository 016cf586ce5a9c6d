"""A Standard Webhooks secret (`whsec_` + base64) and the key inside it.

Here, below both users: `stores add` checks a webhook store's secret (core), and
the signer and verifier (`carts/signing.py`, the OSS) sign with the key.
"""

from __future__ import annotations

import base64
import binascii

PREFIX = "whsec_"


class SignatureError(Exception):
    """A webhook signature cannot be made or checked: the secret is malformed, or the request is
    unsigned, stale or tampered with (the reason says which)."""


def secret_bytes(secret: str) -> bytes:
    """The key inside a `whsec_…` secret: the base64 after the prefix.

    The `=` padding is optional, as in both Standard Webhooks reference libraries (PyPI
    `standardwebhooks` 1.1 decodes `secret + "=="`, npm `standardwebhooks` 1.1.1 decodes
    unpadded base64), so a secret whose `=` was lost in copying works; extra `=` are ignored,
    as the PyPI library does. Characters outside the base64 alphabet are refused, as the npm
    library refuses them: the PyPI one would drop them and sign with another key.
    """
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    digits = raw.rstrip("=")
    try:
        key = base64.b64decode(digits + "=" * (-len(digits) % 4), validate=True)
    except binascii.Error:
        raise SignatureError("the webhook secret is not valid base64") from None
    if not key:
        raise SignatureError("the webhook secret is empty")
    return key
