"""Credentials inside a store's URL (`https://user:password@…`, `?token=…`): found and masked.

The URL is stored as given (the adapter needs it); wherever it is shown it goes
through `mask_url`, and its credentials are scrubbed from answers and errors
like the store's secrets (`Store.resolve_secrets`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "••••••"
_CREDENTIAL_PARAM = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session", re.IGNORECASE)


def url_credentials(url: str) -> list[str]:
    """The credentials a URL carries: its password (or a user without one: a token), and query values
    named like a token or key."""
    try:
        parts = urlsplit(url)
        found = [unquote(parts.password or parts.username or "")]
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _CREDENTIAL_PARAM.search(k)]
    except ValueError:
        return []
    return [v for v in found if v]


def mask_url(url: str) -> str:
    """`url` with `user:password@` and credential-like query values replaced by the mask."""
    try:
        parts = urlsplit(url)
        if not parts.username and not parts.password and not url_credentials(url):
            return url
        netloc = parts.netloc.rpartition("@")[2]
        if parts.username or parts.password:
            netloc = f"{MASK}@{netloc}"
        query = "&".join(
            f"{key}={MASK}" if _CREDENTIAL_PARAM.search(unquote(key)) and value else f"{key}={value}" if sep else key
            for key, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return MASK
