"""Reading input files (CSV, JSON, JSON Lines) into rows that remember where they came from.

Every error names the file, the line and the field, in one sentence.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statusctl.core.infile import (  # re-exported: the importers read files through these
    LIMITS,
    MAX_FILE_BYTES,
    MAX_LINE_BYTES,
    MAX_ROWS,
    InputFile,
    display_path,
    open_input,
)
from statusctl.domain.errors import InputError, shown

__all__ = ["LIMITS", "MAX_FILE_BYTES", "MAX_LINE_BYTES", "MAX_ROWS", "InputFile", "Row", "csv_rows",
           "detect_format", "display_path", "json_document", "jsonl_rows", "open_input"]

MAX_FIELD = 10_000


@dataclass(slots=True)
class Row:
    """One input row: its fields as text (None when absent) and where it stood."""

    source: str
    line: int
    fields: dict[str, Any]
    where: str = ""  # e.g. "order 3, item 2" for nested JSON

    def at(self, field: str | None = None) -> str:
        place = f"{self.source}, line {self.line}"
        if self.where:
            place += f" ({self.where})"
        return f"{place}, field {field!r}" if field else place

    def error(self, field: str | None, problem: str) -> InputError:
        return InputError(f"{self.at(field)}: {problem}.")

    def text(self, field: str, *, required: bool = True, limit: int = 500) -> str | None:
        value = self.fields.get(field)
        if type(value) is str:
            # The common cases first (a bulk apply calls this 800,000 times); anything
            # else falls through to the full checks below, which name the problem.
            text = value.strip()
            if text:
                if len(text) <= limit and "\x00" not in text:
                    return text
            elif not required:
                return None
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.error(field, "is empty" if field in self.fields else "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(field, f"must be text, not {type(value).__name__}")
        text = str(value).strip()
        if "\x00" in text:
            raise self.error(field, "contains a NUL character")
        if len(text) > limit:
            raise self.error(field, f"is longer than {limit} characters")
        return text

    def quantity(self, field: str, *, required: bool = True) -> int | None:
        value = self.fields.get(field)
        if type(value) is str:
            digits = value.strip()
            if digits.isdigit() and digits.isascii() and len(digits) <= 7 and 1 <= int(digits) <= 1_000_000:
                return int(digits)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.error(field, "is missing")
            return None
        if isinstance(value, bool):  # said as the file spells it (JSON true), not as Python's True
            raise self.error(field, f"must be a whole number of at least 1, not {'true' if value else 'false'}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
            # int() refuses more than 4300 digits; anything past 7 is out of range anyway.
            digits = value.strip().lstrip("0") or "0"
            number = int(digits) if len(digits) <= 7 else 10_000_000
        elif isinstance(value, str):
            raise self.error(field, f"must be a whole number of at least 1, not {value[:30]!r}")
        else:  # a JSON number, list or object, as JSON writes it
            import json

            raise self.error(field, f"must be a whole number of at least 1, not {json.dumps(value)[:30]}")
        if not 1 <= number <= 1_000_000:
            shown = str(value).strip()
            shown = shown if len(shown) <= 30 else f"{shown[:30]}…"
            raise self.error(field, f"must be a whole number from 1 to 1000000, not {shown}")
        return number


def detect_format(path: Path, head: str, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix in (".json",):
        return "json"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".txt"):
        return "csv"
    return "json" if head.lstrip().startswith(("[", "{")) else "csv"


def _counted(file: InputFile, number: int) -> None:
    if number > MAX_ROWS:
        raise InputError(f"{file.source}: holds more than {MAX_ROWS:,} rows; files of {LIMITS}.")


def _checked_lines(file: InputFile) -> Iterator[str]:
    for number, line in enumerate(file.lines(universal=True), start=1):
        if "\x00" in line and sys.version_info < (3, 11):
            # Older csv modules refuse NUL; from 3.11 it reaches Row.text, which names the field.
            raise InputError(f"{file.source}, line {number}: contains a NUL character.")
        yield line


def csv_rows(file: InputFile, required: list[str], optional: list[str]) -> Iterator[Row]:
    """Rows of a CSV file with a header; names columns case-insensitively, refuses unknown ones."""
    source = file.source
    csv.field_size_limit(MAX_FIELD * 10)
    reader = csv.reader(_checked_lines(file), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{source}: the file is empty (expected a header line).") from None
    except csv.Error as exc:
        raise InputError(f"{source}, line 1: {exc}.") from None
    names = [h.strip().lower() for h in header]
    known = set(required) | set(optional)
    for name in names:
        if name not in known:
            raise InputError(f"{source}, line 1: unknown column {shown(name)}; columns: {', '.join(required + optional)}.")
    for name in required:
        if name not in names:
            raise InputError(f"{source}, line 1: missing column {name!r}.")
    if len(set(names)) != len(names):
        raise InputError(f"{source}, line 1: a column is named twice.")
    line = reader.line_num
    rows = 0
    try:
        for values in reader:
            start = line + 1
            line = reader.line_num
            if not values or not "".join(values).strip():  # a blank line, or only separators
                continue
            rows += 1
            _counted(file, rows)
            if len(values) != len(names):
                raise InputError(f"{source}, line {start}: has {len(values)} fields, the header has {len(names)}.")
            yield Row(source, start, dict(zip(names, values, strict=True)))
    except csv.Error as exc:
        raise InputError(f"{source}, line {reader.line_num}: {exc}.") from None


class _NotData(ValueError):
    """JSON the standard allows Python to read but no field can hold."""


def _parse_int(text: str) -> int:
    # int() refuses more than 4300 digits with a ValueError naming sys.set_int_max_str_digits.
    if len(text) > 100:
        raise _NotData(f"a number with {len(text)} digits, longer than any field takes")
    return int(text)


def _parse_constant(text: str) -> float:
    raise _NotData(f"{text}, which is not JSON")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=_parse_constant)


def _lone_surrogate_field(value: Any) -> str | None:
    """The top-level field whose text holds a lone surrogate (a \\ud800 escape), '' for a bare value, or None.

    Such text is no character: SQLite cannot store it and no terminal can print it.
    """
    tops = value.items() if isinstance(value, dict) else [("", value)]
    for top, inner in tops:
        stack = [top, inner]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return str(top)
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def _check_text(source: str, line: int, value: Any, raw: str) -> None:
    if "\\u" not in raw:  # only an escape can make a lone surrogate; the common case costs one scan
        return
    field = _lone_surrogate_field(value)
    if field is not None:
        at = f", field {field[:60]!r}" if field else ""
        raise InputError(f"{source}, line {line}{at}: holds an escaped lone surrogate (\\ud800-\\udfff), which is no character.")


def json_document(file: InputFile) -> tuple[Any, list[int]]:
    """Parse a JSON list; returns it with the line on which each top-level element starts."""
    source = file.source
    text = file.text()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise InputError(f"{source}, line {text.count(chr(10), 0, pos) + 1}: expected a JSON list of orders.")
    pos += 1
    items: list[Any] = []
    lines: list[int] = []
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "]":
        return items, lines
    while True:
        pos = _skip_ws(text, pos)
        value, end = _decode(source, text, pos, 1)
        line = text.count("\n", 0, pos) + 1
        _check_text(source, line, value, text[pos:end])
        items.append(value)
        lines.append(line)
        _counted(file, len(items))
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            rest = _skip_ws(text, pos + 1)
            if rest != len(text):
                raise InputError(f"{source}, line {text.count(chr(10), 0, rest) + 1}: text after the JSON list.")
            return items, lines
        raise InputError(f"{source}, line {text.count(chr(10), 0, pos) + 1}: expected ',' or ']' in the JSON list.")


def jsonl_rows(file: InputFile, fields: list[str]) -> Iterator[Row]:
    source = file.source
    rows = 0
    # JSON Lines are split at "\n" only: str.splitlines() also splits at U+2028, U+0085 and
    # other characters a JSON string may hold as they are.
    for number, ended in enumerate(file.lines(universal=False), start=1):
        line = ended.removesuffix("\n")
        if not line.strip():
            continue
        rows += 1
        _counted(file, rows)
        value, end = _decode(source, line, _skip_ws(line, 0), number)
        if line[end:].strip():
            raise InputError(f"{source}, line {number}: text after the JSON object.")
        if not isinstance(value, dict):
            raise InputError(f"{source}, line {number}: expected a JSON object.")
        _check_text(source, number, value, line)
        for key in value:
            if key not in fields:
                raise InputError(f"{source}, line {number}: unknown field {shown(key)}; fields: {', '.join(fields)}.")
        yield Row(source, number, value)


def _decode(source: str, text: str, pos: int, first_line: int) -> tuple[Any, int]:
    """One JSON value at `pos` of `text` (whose first line is `first_line` of the file), errors named by line."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}, line {first_line + exc.lineno - 1}: {_json_problem(exc)}.") from None
    except RecursionError:
        line = first_line + text.count("\n", 0, pos)
        raise InputError(f"{source}, line {line}: JSON nested too deeply.") from None
    except _NotData as exc:
        raise InputError(f"{source}, line {first_line + text.count(chr(10), 0, pos)}: holds {exc}.") from None


def _json_problem(exc: json.JSONDecodeError) -> str:
    """e.g. "invalid JSON (Unterminated string starting at column 7)"; json's msg alone ends in a bare "at"."""
    msg = exc.msg if exc.msg.endswith(" at") else f"{exc.msg} at"
    return f"invalid JSON ({msg} column {exc.colno})"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
