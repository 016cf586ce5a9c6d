"""Credentials inside a store's URL (`https://user:password@…`, `?token=…`): found and masked.

The URL is stored as given (the adapter needs it); wherever it is shown it goes
through `mask_url`, and its credentials are scrubbed from answers and errors
like the store's secrets (`Store.resolve_secrets`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

MASK = "••••••"
_CREDENTIAL_PARAM = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_END_OF_AUTHORITY = re.compile(r"[/?#]")
_HOST_THEN_PATH = re.compile(r"^(?:\[[^\]]*\]|[^@/?#:\[\]]*)(?::\d*)?(?:[/?#]|$)")
_PORT = re.compile(r"^\d*$")


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """`url` as (`scheme://`, its userinfo or None, the rest from the host on).

    Used for every URL shown (a store's, and a database URL in `--db` / `STATUSCTL_DB`).
    The userinfo ends at the LAST `@` before the host, so a password holding `@`
    (`app:s3cr@t!pw@db.example`) is masked whole; so is one holding a raw `/`, `?` or `#`,
    which ends the authority early for `urlsplit` (`app:a/b@db`).
    """
    head = _SCHEME.match(url)
    if not head:
        return "", None, url
    rest = url[head.end():]
    authority = _END_OF_AUTHORITY.split(rest, maxsplit=1)[0]
    if "@" in authority:
        cut = authority.rindex("@")
        return head.group(), rest[:cut], rest[cut + 1:]
    _, colon, port = authority.partition(":")
    if not colon or _PORT.match(port) or authority.startswith("[") or "@" not in rest:
        return head.group(), None, rest
    # `user:pass/word@host`: a password with a raw / ? or # that urlsplit would cut short
    for cut in sorted((i for i, c in enumerate(rest) if c == "@"), reverse=True):
        if _HOST_THEN_PATH.match(rest[cut + 1:]):
            return head.group(), rest[:cut], rest[cut + 1:]
    return head.group(), rest, ""


def url_credentials(url: str) -> list[str]:
    """The credentials a URL carries: its password (or a user without one: a token), and query values
    named like a token or key."""
    _, userinfo, rest = split_userinfo(url)
    user, colon, password = (userinfo or "").partition(":")
    found = [unquote(password if colon else user)]
    query = rest.partition("#")[0].partition("?")[2]
    found += [v for k, v in parse_qsl(query, keep_blank_values=False) if _CREDENTIAL_PARAM.search(k)]
    return [v for v in found if v]


def mask_url(url: str) -> str:
    """`url` with its userinfo (`user:password@`, `token@`) and credential-like query values replaced by
    the mask."""
    head, userinfo, rest = split_userinfo(url)
    rest, hash_mark, fragment = rest.partition("#")
    before, mark, query = rest.partition("?")
    if mark:
        query = "&".join(
            f"{key}={MASK}" if _CREDENTIAL_PARAM.search(unquote(key)) and value else f"{key}={value}" if sep else key
            for key, sep, value in (pair.partition("=") for pair in query.split("&"))
        )
    return head + (f"{MASK}@" if userinfo is not None else "") + before + mark + query + hash_mark + fragment


def db_url_problem(url: str) -> str | None:
    """Why a PostgreSQL URL must be refused before libpq sees it, or None.

    libpq ends the userinfo at the FIRST `@` and the password at a raw `/`, `?` or `#`,
    then puts the rest in its error messages as a host name: a password holding one of
    those would be shown in part. Such a URL is refused, masked, with how to write it.
    """
    head = _SCHEME.match(url)
    if not head:
        return None
    rest = url[head.end():]
    if "@" not in rest:
        return None
    last = rest.rindex("@")
    userinfo = rest[:last]
    if not any(c in userinfo for c in "@/?#"):
        return None
    # Shown with everything before the last @ but the user name masked: split_userinfo itself can be
    # misled by such a password (`user:pa@ss/word@host`).
    user = userinfo.split("@", 1)[0].split("/", 1)[0].partition(":")[0]
    shown = f"{head.group()}{user}:{MASK}@{rest[last + 1:]}"
    return (f"{shown} has a password holding a raw @, /, ? or #, which PostgreSQL reads as the end of the "
            "password; percent-encode them (%40, %2F, %3F, %23), or keep the password in ~/.pgpass.")


def shown_db_value(value: str) -> str:
    """A database value (a path, a URL, or something else) as an error may quote it: a URL masked, and a value
    that is no URL but could hold a password (`scheme:user:pw@host`, `key=value` pairs) reduced to its first word."""
    if _SCHEME.match(value):
        return mask_db_url(value)
    if "@" in value or "=" in value:
        return value.split(":", 1)[0].split("=", 1)[0].split()[0] + "…" if value.strip() else value
    return value


# libpq parameters whose names look like a credential's but whose values are not secret (file
# paths, methods, public names): kept in the URL to share. Any other credential-like one is left out.
_DB_PUBLIC_PARAMS = frozenset({
    "passfile", "sslkey", "sslcert", "sslrootcert", "sslcrl", "sslcrldir", "sslkeylogfile",
    "require_auth", "krbsrvname", "target_session_attrs", "oauth_issuer", "oauth_client_id", "oauth_scope",
})


def db_url_to_share(url: str) -> tuple[str, list[str]]:
    """A database URL to set on every machine, and what was left out of it for each machine to
    give its own way: the password (`user:password@`, `?password=`, for ~/.pgpass) and any
    other secret a query parameter holds (`?sslpassword=`, `?oauth_client_secret=`)."""
    head, userinfo, rest = split_userinfo(url)
    rest, hash_mark, fragment = rest.partition("#")
    before, mark, query = rest.partition("?")
    kept, left_out = [], []
    for pair in query.split("&") if mark else []:
        key = unquote(pair.partition("=")[0]).lower()
        if _CREDENTIAL_PARAM.search(key) and key not in _DB_PUBLIC_PARAMS:
            left_out.append(key)
        elif pair:
            kept.append(pair)
    user, colon, _ = (userinfo or "").partition(":")
    if colon:
        left_out.insert(0, "password")
    shared = head + (user + "@" if userinfo is not None else "") + before + ("?" + "&".join(kept) if kept else "")
    return shared + hash_mark + fragment, list(dict.fromkeys(left_out))


def mask_db_url(url: str) -> str:
    """A database URL as shown: the user name kept (it says who connects), the password and
    credential-like query values (`?password=…`) masked."""
    masked = mask_url(url)
    _, userinfo, _ = split_userinfo(url)
    if userinfo is None:
        return masked
    user, colon, _password = userinfo.partition(":")
    head, _, rest = split_userinfo(masked)
    return f"{head}{user}{':' + MASK if colon else ''}@{rest}"
