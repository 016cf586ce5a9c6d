"""Fuzzing the inputs: broken and hostile CSV, JSON, JSON Lines and option values.

Every case runs the real command line (`typer.testing.CliRunner`) on a shop restored
from one template, and must end with exit 0 or 1, no traceback and no stray exception.
A failure is one line on stderr starting with "Error:", nothing on stdout, and the
database dump is unchanged. What a command accepted must show again without a crash
(`labels list`, `orders list`, `orders show`, `stack list`, …): hostile text stored
once must not break every later read. Import and apply also run through their core
functions, which may only raise `StatusctlError` and must write nothing when they do.

Hostile means: huge fields, NUL and control characters, wrong encodings (Latin-1,
UTF-16, invalid UTF-8 bytes, lone surrogate escapes), spreadsheet formulas, SQL-looking
text, Rich markup and terminal escapes, numbers JSON or Python cannot hold (NaN, 5000
digits), deep nesting, broken quoting, wrong field counts and unknown columns.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from statusctl.cli.main import app
from statusctl.core import actions, orders
from statusctl.core.init import initialize
from statusctl.core.settings import set_value
from statusctl.core.stores import add_store
from statusctl.domain.errors import StatusctlError
from statusctl.domain.events import EVENT_NAMES
from statusctl.domain.settings import PARAMS
from statusctl.storage.db import Database

from ..helpers import CSV_ORDERS, EXAMPLES, JSON_ORDERS, WEBHOOK_SECRET, dump

EXAMPLES_RUN = {"fast": 150, "slow": 400}  # slow: CI runs it too, within its time budget
ORDER_COLUMNS = [*orders.REQUIRED, *orders.OPTIONAL]
KNOWN_ORDERS = {**CSV_ORDERS, **JSON_ORDERS}
_ENV = {"COLUMNS": "300", "NO_COLOR": "1"}

# -- hostile text ------------------------------------------------------------------------

SPECIAL = [
    "=cmd|' /C calc'!A0", "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A9)",
    "'; DROP TABLE orders; --", "1' OR '1'='1", "Robert'); DROP TABLE stack;--", "\" OR 1=1 --",
    "%s%s%s%n", "{0}{1!r}", "${jndi:ldap://x}", "<script>alert(1)</script>", "[/]", "[bold red]x[/",
    "[link=file:///etc/passwd]x[/link]", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\u202egnp.exe",
    "\u200b", "\ufeff", "０１２", "١٢", "²", "1e3", "0x10", "NaN", "Infinity", "-0", "1.0", " 1 ", "00001",
    "1000001", "9" * 40, "9" * 5000, "", " ", "\t", "\r", "\n", "\r\n", "\"", "\"\"", ",", ";", "null",
    "true", "[]", "{}", "..", "../../etc/passwd", "C:\\Windows", "🙂" * 3, "a" * 51, "é" * 501,
    "2026-02-30", "2026-11-20T25:00", "0001-01-01", "9999-12-31T23:59:59+14:00", "-1", "0",
]


def _huge(char: str, n: int) -> str:
    return char * n


texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(SPECIAL),
    st.builds(_huge, st.sampled_from(["A", "é", "🙂", "9", " ", "\n", "\""]), st.sampled_from([501, 10_001, 120_000])),
    st.text(max_size=8).map(lambda s: f"{s}\x00{s}"),
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=5),
)
# Hostile but storable: passes every length and character check, so it is saved and shown again.
storable = st.one_of(
    st.sampled_from([x for x in SPECIAL if x.strip() and "\x00" not in x and len(x) <= 40 and "'" not in x and '"' not in x]),
    st.text(min_size=1, max_size=30).map(lambda t: t.replace("\x00", "").replace("'", "").replace('"', "")),
).filter(lambda t: t.strip() != "")
# Times and ages at the edges of what clocks hold.
times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01", "0001-01-01T00:00", "9999-12-31T23:59:59", "9999-12-31T23:59:59-14:00",
                     "1970-01-01", "2026-02-29", "2026-11-26T08:00Z", "2026-11-26 08:00", "T08:00", "now"]),
    st.tuples(st.sampled_from(["0", "1", "1.5", "9" * 30, "9" * 400, "00"]), st.sampled_from(["s", "m", "h", "d", " d", "w", ""]))
    .map("".join),
)
# Command-line arguments: no NUL (argv cannot hold one), but undecodable bytes arrive as
# surrogate escapes, as Python decodes argv.
argv_texts = st.one_of(
    texts.map(lambda s: s.replace("\x00", "")),
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"\x00", b"").decode("utf-8", "surrogateescape")),
)


class Raw:
    """JSON text placed as is (a number Python cannot print, NaN, deep nesting, a lone surrogate)."""

    def __init__(self, text: str) -> None:
        self.text = text


raw_json = st.sampled_from([
    Raw("1" * 5000), Raw("-" + "9" * 4400), Raw("1e999"), Raw("NaN"), Raw("-Infinity"), Raw("1.5"), Raw("0"),
    Raw('"\\ud800"'), Raw('"x\\udfff"'), Raw('"\\ud83d\\ude00"'), Raw('"\\u0000"'), Raw("[" * 3000 + "]" * 3000),
    Raw("[" * 100_000 + "]" * 100_000), Raw('{"a":' * 2000 + "1" + "}" * 2000), Raw("true"), Raw("null"),
])
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(texts, st.integers(-(10**20), 10**20), st.floats(allow_nan=False), st.booleans(), st.none(), raw_json),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def to_json(value: Any, ascii: bool = True) -> str:
    """json.dumps with every `Raw` spliced in as its text (ascii=False: U+2028, U+0085… as they are)."""
    raws: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=default, ensure_ascii=ascii)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"@@RAW{i}@@"), raw, 1)
    return text


# -- files --------------------------------------------------------------------------------

ENCODINGS = ["utf-8"] * 5 + ["utf-8-sig", "utf-16", "latin-1", "cp1252", "surrogates", "truncated"]


def encode(text: str, how: str) -> bytes:
    if how in ("latin-1", "cp1252"):
        return text.encode(how, errors="replace")
    if how == "surrogates":  # bytes that are not UTF-8 in the middle of the file
        middle = len(text) // 2
        return text[:middle].encode("utf-8", "surrogatepass") + b"\xed\xa0\x80\xff" + text[middle:].encode("utf-8", "surrogatepass")
    if how == "truncated":  # cut inside a multi-byte character
        data = (text + "é").encode("utf-8", "surrogatepass")
        return data[:-1]
    return text.encode(how, "surrogatepass")


def good_order_row(number: str, sku: str = "FZ-1") -> dict[str, str]:
    return {"order_number": number, "order_date": "2026-11-20", "customer_name": "Fuzz Tester",
            "customer_email": "fuzz@example.com", "ship_postal_code": "12345", "sku": sku, "name": "Thing",
            "quantity": "1", "cart_order_id": "77", "cart_line_id": "88"}


@st.composite
def orders_csv(draw: st.DrawFn) -> bytes:
    columns = list(draw(st.permutations(ORDER_COLUMNS)))
    mutation = draw(st.sampled_from(["none"] * 4 + ["drop", "extra", "twice", "case", "empty"]))
    if mutation == "drop":
        columns.pop(draw(st.integers(0, len(columns) - 1)))
    elif mutation == "extra":
        columns.append(draw(texts))
    elif mutation == "twice":
        columns.append(draw(st.sampled_from(columns)))
    elif mutation == "case":
        columns = [f" {c.upper()} " for c in columns]
    rows = [good_order_row("F-1")]  # a good new order first: a half-done import would show
    free = ["order_number", "customer_name", "sku", "name", "cart_order_id", "cart_line_id", "ship_postal_code"]
    for n in range(draw(st.integers(0, 3))):
        row = good_order_row(draw(st.sampled_from(["F-1", "F-2", f"F-{n + 3}", "1001"])), draw(st.sampled_from(["FZ-1", "FZ-2"])))
        if draw(st.booleans()):  # hostile text where any text goes: it should be stored and shown again
            for key in draw(st.lists(st.sampled_from(free), max_size=4)):
                row[key] = draw(storable)[:20]
            if draw(st.booleans()):
                row["order_date"] = draw(times)
        else:
            for key in draw(st.lists(st.sampled_from(ORDER_COLUMNS), max_size=3)):
                row[key] = draw(texts)
        rows.append(row)
    quoting = draw(st.sampled_from(["csv", "csv", "raw"]))
    lines: list[list[str]] = [columns] + [[r.get(c.strip().lower(), "x") for c in columns] for r in rows]
    if draw(st.booleans()):  # a row with the wrong number of fields
        lines.append(lines[-1][: draw(st.integers(0, len(columns)))] + draw(st.lists(texts, max_size=2)))
    if quoting == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(lines)
        text = buf.getvalue()
    else:  # no quoting at all: commas, quotes and newlines inside fields break the row
        text = "\n".join(",".join(line) for line in lines) + "\n"
    if mutation == "empty":
        text = draw(st.sampled_from(["", "\n", "\ufeff", " , ,\n"]))
    return encode(text, draw(st.sampled_from(ENCODINGS)))


@st.composite
def orders_json(draw: st.DrawFn) -> bytes:
    def order(number: str) -> dict[str, Any]:
        row = good_order_row(number)
        item = {k: row.pop(k) for k in ("sku", "name", "quantity", "cart_line_id")}
        return {**row, "items": [item]}

    document: Any = [order("J-1")]
    for n in range(draw(st.integers(0, 2))):
        o = order(draw(st.sampled_from([f"J-{n + 2}", "J-1", "2001"])))
        item = o["items"][0]
        for key in draw(st.lists(st.sampled_from([*ORDER_COLUMNS, "items", "colour"]), max_size=3)):
            target = item if key in ("sku", "name", "quantity", "cart_line_id") and draw(st.booleans()) else o
            target[key] = draw(json_values)
        document.append(o)
    shape = draw(st.sampled_from(["list", "list", "list", "object", "value", "trailing", "truncated"]))
    if shape == "object":
        document = document[0]
    elif shape == "value":
        document = draw(json_values)
    text = to_json(document, draw(st.booleans()))
    if shape == "trailing":
        text += draw(st.sampled_from(["]", ",", "x", "[]", "\x00"]))
    elif shape == "truncated":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return encode(text, draw(st.sampled_from(ENCODINGS)))


APPLY_FIELDS = actions.APPLY_FIELDS


@st.composite
def apply_row(draw: st.DrawFn) -> dict[str, Any]:
    number = draw(st.sampled_from(sorted(KNOWN_ORDERS)))
    action = draw(st.sampled_from(["fire", "ship", "cancel", "FIRE", " ship ", "refund"]))
    row: dict[str, Any] = {"action": action, "order": number}
    if "fire" in action.lower():
        row["event"] = draw(st.sampled_from([*EVENT_NAMES, "order-approved", "nope"]))
    if draw(st.booleans()):
        row["sku"] = draw(st.sampled_from([*KNOWN_ORDERS[number], "NOPE"]))
    if draw(st.booleans()):  # hostile text where any text goes
        row["note"] = draw(storable)
        if "ship" in action:
            row["tracking"], row["carrier"] = draw(storable), draw(storable)
    else:
        for key in draw(st.lists(st.sampled_from(APPLY_FIELDS), max_size=3)):
            row[key] = draw(json_values)
    return row


@st.composite
def apply_file(draw: st.DrawFn) -> tuple[str, bytes]:
    first: dict[str, Any] = {"action": "fire", "event": "order-approved", "order": "1004",  # a good row first
                             "note": draw(storable)}
    rows = [first, *draw(st.lists(apply_row(), max_size=4))]
    kind = draw(st.sampled_from(["jsonl", "csv"]))
    if kind == "jsonl":
        ascii = draw(st.booleans())
        lines = [to_json(r, ascii) for r in rows]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["{", "[1]", "x", "{}", '"s"', "\x00"])))
        text = "\n".join(lines) + "\n"
    else:
        columns = APPLY_FIELDS if draw(st.booleans()) else [*APPLY_FIELDS, draw(texts)]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else (to_json(r[c]) if not isinstance(r[c], str) else r[c])
                             for c in columns])
        text = buf.getvalue()
    return kind, encode(text, draw(st.sampled_from(ENCODINGS)))


# -- running ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop every case starts from: defaults, updates on, two stores, both example files, one record."""
    path = tmp_path_factory.mktemp("fuzz-template") / "template.db"
    db = Database.open(path)
    try:
        initialize(db)
        set_value(db, "UseStatusUpdates", "true")
        add_store(db, "web", "webhook", "http://127.0.0.1:9/hook", [f"secret={WEBHOOK_SECRET}"], [], [])
        add_store(db, "shop", "woocommerce", "https://shop.example", ["key=ck_fuzz", "secret=cs_fuzz"], [], [])
        orders.import_orders(db, EXAMPLES / "orders.csv", "web")
        orders.import_orders(db, EXAMPLES / "orders.json", "shop")
        actions.fire(db, "order-approved", "1001", [])
    finally:
        db.close()
    return path


@pytest.fixture
def shop(template: Path, db_file: Path) -> Callable[[], None]:
    """Restore the test's database (STATUSCTL_DB) from the template; call it at the start of every case."""

    def restore() -> None:
        for suffix in ("-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        db_file.unlink(missing_ok=True)
        src, dst = sqlite3.connect(template), sqlite3.connect(db_file)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    return restore


def invoke(args: list[str]) -> Result:
    from statusctl.cli import common

    common.set_db_option(None)
    return CliRunner().invoke(app, args, env=_ENV)


def check(args: list[str], before: list[str], *, db_file: Path) -> Result:
    """The rules every case obeys; returns the result for more checks."""
    result = invoke(args)
    shown = f"statusctl {' '.join(map(repr, args))[:500]}\nexit {result.exit_code}\nstdout: {result.stdout[:2000]}\nstderr: {result.stderr[:2000]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}\n{shown}") from result.exception
    assert result.exit_code in (0, 1), shown
    assert "Traceback" not in result.output, shown
    event(f"{args[0]}: exit {result.exit_code}")
    if result.exit_code == 1:
        assert result.stdout == "", shown
        assert result.stderr.startswith("Error: ") and len(result.stderr) > len("Error: \n"), shown
        assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), shown
        assert len(result.stderr) <= 1000, f"the error is not one readable sentence ({len(result.stderr)} chars)\n{shown}"
        assert dump(db_file) == before, f"a failed command changed the database\n{shown}"
    return result


READS = [
    ["labels", "list"], ["labels", "list", "--json"], ["events", "list"], ["config", "list"], ["stores", "list"],
    ["stores", "list", "--json"], ["orders", "list"], ["orders", "list", "--json"], ["stack", "list"],
    ["stack", "list", "--json"], ["stack", "status"], ["stack", "history"], ["stack", "history", "--json"],
    ["stack", "top", "--once"],
]


def reads_still_work(db_file: Path, extra: list[list[str]] = ()) -> None:  # type: ignore[assignment]
    """Whatever a command stored must show again: every read exits 0, --json is one document."""
    for args in [*READS, *extra]:
        result = invoke(args)
        shown = f"statusctl {' '.join(args)}\nstdout: {result.stdout[:2000]}\nstderr: {result.stderr[:2000]}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"uncaught {result.exception!r}\n{shown}") from result.exception
        assert result.exit_code == 0, shown
        if "--json" in args:
            json.loads(result.stdout)


def new_orders(db_file: Path) -> list[str]:
    conn = sqlite3.connect(db_file)
    try:
        return [r[0] for r in conn.execute("SELECT number FROM orders ORDER BY id") if r[0] not in KNOWN_ORDERS]
    finally:
        conn.close()


def core_only_raises_our_errors(call: Callable[[Database], object], db_file: Path) -> None:
    before = dump(db_file)
    db = Database.open(db_file)
    try:
        call(db)
    except StatusctlError:
        assert dump(db_file) == before, "a refused import/apply changed the database"
    finally:
        db.close()


FUZZ = settings(max_examples=EXAMPLES_RUN["fast"], deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])
FUZZ_SLOW = settings(FUZZ, max_examples=EXAMPLES_RUN["slow"])


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- orders import --------------------------------------------------------------------------


def _import_case(shop: Callable[[], None], db_file: Path, tmp_path: Path, data: bytes, name: str,
                 fmt: str | None) -> None:
    shop()
    path = _file(tmp_path, name, data)
    args = ["orders", "import", str(path), "--store", "web"] + (["--format", fmt] if fmt else [])
    result = check(args, dump(db_file), db_file=db_file)
    if result.exit_code == 0:
        reads_still_work(db_file, [["orders", "show", "--", n] for n in new_orders(db_file)[:3]]
                         + [["orders", "show", "--json", "--", n] for n in new_orders(db_file)[:3]])
    shop()
    core_only_raises_our_errors(lambda db: orders.import_orders(db, path, "web", fmt), db_file)


@given(data=orders_csv(), name=st.sampled_from(["o.csv", "o.txt", "o", "o.json"]), fmt=st.sampled_from([None, "csv"]))
@FUZZ
def test_orders_csv(shop, db_file, tmp_path, data, name, fmt):
    _import_case(shop, db_file, tmp_path, data, name, fmt)


@given(data=orders_json(), name=st.sampled_from(["o.json", "o", "o.csv"]), fmt=st.sampled_from([None, "json"]))
@FUZZ
def test_orders_json(shop, db_file, tmp_path, data, name, fmt):
    _import_case(shop, db_file, tmp_path, data, name, fmt)


# -- apply ----------------------------------------------------------------------------------


def _apply_case(shop: Callable[[], None], db_file: Path, tmp_path: Path, kind: str, data: bytes) -> None:
    shop()
    path = _file(tmp_path, f"a.{kind}", data)
    result = check(["apply", str(path)], dump(db_file), db_file=db_file)
    if result.exit_code == 0:
        reads_still_work(db_file, [["orders", "show", n] for n in ("1001", "1003", "2001")])
    shop()
    core_only_raises_our_errors(lambda db: actions.apply_file(db, path), db_file)


@given(case=apply_file())
@FUZZ
def test_apply(shop, db_file, tmp_path, case):
    _apply_case(shop, db_file, tmp_path, *case)


# -- option values --------------------------------------------------------------------------


def commands(junk: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Commands with junk in one or more option values or arguments ("--opt=value", "--" before arguments)."""
    param = st.sampled_from(sorted(PARAMS))
    cart = st.sampled_from(["webhook", "seti", "woocommerce", "oss", "none", "shopify"])
    order = st.sampled_from(["1001", "1003", "2001"])
    any_junk = st.one_of(junk, st.sampled_from(["", "x=y", "=", "key=", "=v", "secret=whsec_x", "allow_http=true",
                                                "timeout=-1", "timeout=nan", "timeout=1e999", "tracking=x"]))
    return st.one_of(
        st.tuples(st.one_of(param, junk), any_junk).map(lambda t: ["config", "set", "--", *t]),
        st.tuples(param, st.sampled_from(["0", "1", "0.01", "1e300", "604800", "9" * 40, "1,1e10", "8", "true", "256"]))
        .map(lambda t: ["config", "set", "--", *t]),
        junk.map(lambda j: ["config", "get", "--", j]),
        st.tuples(junk, st.sampled_from(["item", "order", "both"]) | junk, st.lists(any_junk, max_size=2))
        .map(lambda t: ["labels", "add", f"--scope={t[1]}", *[f"--map={m}" for m in t[2]], "--", t[0]]),
        st.lists(any_junk, min_size=1, max_size=2).map(lambda ms: ["labels", "add", *[f"--map={m}" for m in ms], "--", "Fuzzed"]),
        junk.map(lambda j: ["labels", "remove", "--", j]),
        st.tuples(st.sampled_from(["--item-label", "--order-label"]), junk, st.sampled_from(EVENT_NAMES) | junk)
        .map(lambda t: ["events", "set", f"{t[0]}={t[1]}", "--", t[2]]),
        st.tuples(junk | st.just("new-store"), cart | junk, junk | st.just("http://127.0.0.1:8/x"),
                  st.lists(any_junk, max_size=2), st.lists(any_junk, max_size=2), st.lists(any_junk, max_size=2))
        .map(lambda t: ["stores", "add", f"--cart={t[1]}", f"--url={t[2]}", *[f"--secret={s}" for s in t[3]],
                        *[f"--secret-env={s}" for s in t[4]], *[f"--option={o}" for o in t[5]], "--", t[0]]),
        st.tuples(st.sampled_from([["show"], ["show", "--json"], ["remove", "--yes"], ["test"]]), junk)
        .map(lambda t: ["stores", *t[0], "--", t[1]]),
        junk.map(lambda j: ["oss", "set", "--", j]),
        st.tuples(junk, junk).map(lambda t: ["orders", "list", f"--label={t[0]}", f"--store={t[1]}"]),
        junk.map(lambda j: ["orders", "show", "--", j]),
        st.tuples(junk, junk).map(lambda t: ["orders", "import", f"--store={t[0]}", "--", t[1]]),
        st.tuples(st.sampled_from(EVENT_NAMES) | junk, order | junk, st.lists(any_junk, max_size=2), junk)
        .map(lambda t: ["fire", *[f"--item={i}" for i in t[2]], f"--note={t[3]}", "--", t[0], t[1]]),
        st.tuples(order | junk, st.lists(any_junk, max_size=2), st.none() | junk, st.none() | junk, junk)
        .map(lambda t: ["ship", *[f"--item={i}" for i in t[1]], *([f"--tracking={t[2]}"] if t[2] is not None else []),
                        *([f"--carrier={t[3]}"] if t[3] is not None else []), f"--note={t[4]}", "--", t[0]]),
        st.tuples(order | junk, st.lists(any_junk, max_size=2)).map(lambda t: ["cancel", *[f"--item={i}" for i in t[1]], "--", t[0]]),
        st.tuples(junk, junk).map(lambda t: ["stack", "list", f"--store={t[0]}", f"--order={t[1]}"]),
        st.tuples(junk | times, st.none() | junk).map(
            lambda t: ["stack", "history", f"--since={t[0]}", *([f"--order={t[1]}"] if t[1] is not None else [])]),
        times.map(lambda t: ["stack", "history", "--json", f"--since={t}"]),
        st.lists(junk, min_size=1, max_size=2).map(lambda ids: ["stack", "retry", "--", *ids]),
        st.lists(junk, min_size=1, max_size=2).map(lambda ids: ["stack", "drop", "--yes", "--", *ids]),
        junk.map(lambda j: ["stack", "run", f"--store={j}"]),
        junk.map(lambda j: ["apply", "--", j]),
        # Valid commands carrying hostile text that is saved and shown again.
        st.tuples(storable, storable).map(lambda t: ["labels", "add", "--scope=both", f"--map=woocommerce={t[1]}", "--", t[0][:50]]),
        st.tuples(storable, storable).map(lambda t: ["ship", f"--tracking={t[0]}", f"--carrier={t[1]}", f"--note={t[0]}", "--", "1003"]),
        storable.map(lambda n: ["fire", f"--note={n}", "--", "order-approved", "1004"]),
        storable.map(lambda n: ["cancel", "--item=PEN-3", "--", "1005"] + ([] if not n else [])),
        storable.map(lambda n: ["stores", "add", "--cart=webhook", f"--url=http://127.0.0.1:8/{n}",
                                f"--secret=secret={WEBHOOK_SECRET}", "--", "hostile"]),
        storable.map(lambda n: ["stores", "add", "--cart=seti", "--url=http://127.0.0.1:8/cart.php",
                                f"--secret=user={n}", f"--secret=password={n}", f"--option=code={n}", "--", "legacy"]),
    )


def _option_case(shop: Callable[[], None], db_file: Path, args: list[str]) -> None:
    shop()
    result = check(args, dump(db_file), db_file=db_file)
    if result.exit_code == 0 and args[:2] == ["config", "set"]:
        # A parameter that was taken must also work: a send (to a port where nothing listens)
        # fails and is scheduled by it, and the reads below show the schedule.
        sent = invoke(["stack", "run", "--json"])
        assert sent.exception is None or isinstance(sent.exception, SystemExit), repr(sent.exception)
        assert sent.exit_code in (0, 3), sent.stderr
    if result.exit_code == 0:
        reads_still_work(db_file, [["orders", "show", "1001"], ["orders", "show", "1003"], ["orders", "show", "1004"],
                                   ["stores", "show", "web"], ["stores", "list"]])


@given(args=commands(argv_texts))
@FUZZ
def test_option_values(shop, db_file, args):
    _option_case(shop, db_file, args)


# The long runs: the same cases, ten times as many (CI runs them).


@pytest.mark.slow
@given(data=orders_csv(), name=st.sampled_from(["o.csv", "o"]), fmt=st.sampled_from([None, "csv"]))
@FUZZ_SLOW
def test_orders_csv_long(shop, db_file, tmp_path, data, name, fmt):
    _import_case(shop, db_file, tmp_path, data, name, fmt)


@pytest.mark.slow
@given(data=orders_json(), fmt=st.sampled_from([None, "json"]))
@FUZZ_SLOW
def test_orders_json_long(shop, db_file, tmp_path, data, fmt):
    _import_case(shop, db_file, tmp_path, data, "o.json", fmt)


@pytest.mark.slow
@given(case=apply_file())
@FUZZ_SLOW
def test_apply_long(shop, db_file, tmp_path, case):
    _apply_case(shop, db_file, tmp_path, *case)


@pytest.mark.slow
@given(args=commands(argv_texts))
@FUZZ_SLOW
def test_option_values_long(shop, db_file, args):
    _option_case(shop, db_file, args)
