"""Masking secrets in text that is stored or shown: whatever the encoding, no piece of one shows.

A cart's answer may echo the request (a proxy's error page, a PHP script dumping what it
got), so a secret comes back in the forms a request carries it and in the forms the cart
writes it: URL- or form-encoded, JSON- or HTML-escaped the way PHP does, base64 inside an
HTTP Basic credential. ENCODINGS lists them, one line each; every FRAGMENT-long piece of
every form (and of every form of a form) is masked, the hex digits of escapes in either case.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from statusctl.domain.urls import MASK

EXCERPT_CHARS = 300


def _json(text: str, *, ascii_only: bool = True, slash: bool = False, hex_quotes: bool = False) -> str:
    out = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
    if slash:
        out = out.replace("/", "\\/")
    if hex_quotes:  # PHP's JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT
        out = out.replace('\\"', "\\u0022")
        for ch in "<>&'":
            out = out.replace(ch, f"\\u{ord(ch):04x}")
    return out


def _html(text: str, apostrophe: str | None) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return out if apostrophe is None else out.replace("'", apostrophe)


# How a secret may travel or be echoed back: one line per encoding. Each is also applied on top
# of each other (a URL-encoded password inside a JSON-escaped page), and its escapes are matched
# with hex digits in either case (%2f and %2F, \u003c and \u003C).
ENCODINGS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("as it is", lambda s: s),
    ("whitespace collapsed", lambda s: " ".join(s.split())),
    ("URL path", quote),
    ("URL component (PHP rawurlencode)", lambda s: quote(s, safe="")),
    ("form (urlencode)", quote_plus),
    ("PHP urlencode", lambda s: quote_plus(s, safe="").replace("~", "%7E")),
    ("JSON", _json),
    ("JSON, UTF-8 kept", lambda s: _json(s, ascii_only=False)),
    ("PHP json_encode", lambda s: _json(s, slash=True)),
    ("PHP json_encode, JSON_UNESCAPED_UNICODE", lambda s: _json(s, ascii_only=False, slash=True)),
    ("PHP json_encode, JSON_HEX_*", lambda s: _json(s, slash=True, hex_quotes=True)),
    ("HTML (Python html.escape)", html.escape),
    ("PHP htmlspecialchars, ENT_QUOTES", lambda s: _html(s, "&#039;")),
    ("htmlspecialchars, ENT_HTML5 / XML", lambda s: _html(s, "&apos;")),
    ("htmlspecialchars, ENT_COMPAT", lambda s: _html(s, None)),
    ("HTML decimal apostrophe", lambda s: _html(s, "&#39;")),
    ("PHP addslashes", lambda s: s.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')),
    ("base64", lambda s: base64.b64encode(s.encode()).decode().rstrip("=")),
)
FRAGMENT = 8  # any piece this long of a secret (in any of its forms) is masked
SHORTEST = 4  # a secret shorter than FRAGMENT is masked whole; one shorter than this is not a secret

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|&#[xX][0-9A-Fa-f]+;")  # %2F, \u003C, &#x27;


def _hex_cases(form: str) -> set[str]:
    """The form with the hex digits of its escapes in upper and in lower case."""

    def digits(match: re.Match[str], case: Callable[[str], str]) -> str:
        escape = match[0]
        head = {"%": 1, "\\": 2, "&": 3}[escape[0]]
        return escape[:head] + case(escape[head:])

    return {form, _ESCAPE.sub(lambda m: digits(m, str.upper), form), _ESCAPE.sub(lambda m: digits(m, str.lower), form)}


@dataclass(frozen=True)
class _Scrubber:
    pieces: frozenset[str]  # every FRAGMENT-long piece of every form
    whole: tuple[str, ...]  # forms shorter than FRAGMENT, longest first


def secret_forms(values: tuple[str, ...]) -> set[str]:
    """The texts secrets travel as: each of several space-separated ones (key rotation) too, in every
    encoding and every encoding of an encoding, and the base64 of an HTTP Basic credential
    ("key:secret", "key:"). An answer that echoes the request (a proxy's error page, a PHP dump)
    shows them in those forms."""
    plain = [v for v in values if v]
    parts = {part for value in plain for part in {value, *value.split()} if len(part) >= FRAGMENT or part == value}
    once = {encode(part) for part in parts for _, encode in ENCODINGS}
    forms = {outer(inner) for inner in once for _, outer in ENCODINGS}
    for user in plain:
        for password in ["", *plain]:
            if password != user:
                forms.add(base64.b64encode(f"{user}:{password}".encode()).decode().rstrip("="))
    return {f for f in forms if len(f) >= SHORTEST}


@functools.lru_cache(maxsize=64)
def _scrubber(values: tuple[str, ...]) -> _Scrubber:
    forms = {cased for f in secret_forms(values) for cased in _hex_cases(f)}
    pieces = frozenset(f[i : i + FRAGMENT] for f in forms if len(f) >= FRAGMENT for i in range(len(f) - FRAGMENT + 1))
    whole = tuple(sorted((f for f in forms if len(f) < FRAGMENT), key=len, reverse=True))
    return _Scrubber(pieces, whole)


def scrub(text: str, values: tuple[str, ...]) -> str:
    """`text` with every run of characters that is a piece of a secret's form replaced by MASK."""
    s = _scrubber(values)
    if not text or not (s.pieces or s.whole):
        return text
    hidden = bytearray(len(text))
    pieces = s.pieces
    for i in range(len(text) - FRAGMENT + 1):
        if text[i : i + FRAGMENT] in pieces:
            hidden[i : i + FRAGMENT] = b"\x01" * FRAGMENT
    for form in s.whole:
        start = text.find(form)
        while start >= 0:
            hidden[start : start + len(form)] = b"\x01" * len(form)
            start = text.find(form, start + 1)
    if not any(hidden):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        j = hidden.find(b"\x01", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j] + MASK)
        end = hidden.find(b"\x00", j)
        i = len(text) if end < 0 else end
    return "".join(out)


def excerpt(text: str, values: tuple[str, ...]) -> str:
    """The start of `text` as the history keeps it: whitespace collapsed, scrubbed, EXCERPT_CHARS long.

    Only the start is scrubbed (an answer may be megabytes long), but enough of it that a
    piece of a secret cut at the end of what was scrubbed lies past what is kept.
    """
    size = EXCERPT_CHARS * 2
    while True:
        shown = scrub(" ".join(text[:size].split()), values)
        if len(shown) >= EXCERPT_CHARS + FRAGMENT or size >= len(text):
            return shown[:EXCERPT_CHARS]
        size *= 4
