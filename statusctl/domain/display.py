"""Text from outside shown to a person: control and bidi characters escaped, so it cannot drive a terminal.

A cart's answer, an imported customer name or SKU, a store's URL: any of them
can hold ESC or C1 sequences (retitle the window, write the clipboard, move the
cursor up and print "OK") or bidi overrides (U+202E turns what follows around).
`printable` is the one function every human-readable output goes through (the
CLI's tables, lines and errors, `shown` in error sentences); `--json` keeps
the exact text and escapes the same characters JSON's way (`json_safe`).
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; U+061C, U+200E/F, U+202A–E and U+2066–9 (the bidi
# controls); U+200B and U+2060–U+206F (invisible: zero-width space, word joiner,
# deprecated format controls); U+2028/9 (line and paragraph separators); U+FEFF;
# U+FFF9–B (interlinear annotation); lone surrogates (bytes that were not UTF-8).
# ZWNJ and ZWJ (U+200C/D) stay: scripts and emoji need them.
_OTHERS = "\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_KEEP_LINES_RE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHERS}]")
_OTHERS_RE = re.compile(f"[{_OTHERS}]")  # json.dumps itself writes C0 controls as \\u00XX


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(value: object, *, lines: bool = False) -> str:
    """`value` as text with every control, bidi and invisible format character written as an escape.

    `\\x1b`, `\\x9b`, `\\u202e`, `\\n`: what a person reads is what is there, and the terminal
    only ever receives printable characters. Newlines are escaped too (a cell or a line
    stays one line), unless `lines` keeps them for a message of several lines.
    """
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_KEEP_LINES_RE if lines else _UNSAFE_RE).sub(_escape, text)


def json_safe(document: str) -> str:
    """A JSON text with the same characters written as `\\u` escapes (e.g. `\\u202e`): the same data, safe on a terminal.

    They can only stand inside strings, where the escape means exactly the character.
    """
    return _OTHERS_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def plural(count: object, word: str, many: str | None = None) -> str:
    """`1 row`, `2 rows` (`many` for a word whose plural is not word + 's'); a count a cart gave as text
    (or `?` when it gave none) reads the same way."""
    return f"{count} {word if str(count).strip() == '1' else many or word + 's'}"
