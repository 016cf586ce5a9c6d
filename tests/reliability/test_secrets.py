"""Secret-leak scan: every command run with known secrets configured; none ever shows up.

Stores of every cart type get distinctive secrets, some stored (`--secret`), some held in
the environment (`--secret-env`), one of them the OSS key (STATUSCTL_OSS_SECRET). Every
store points at one local fake cart that answers every request with an error echoing the
request back: its headers (Authorization, X-Auth-Token, …), query string and body (form
passwords, OAuth client secrets) — as a misconfigured proxy or a PHP error page would.
Then every command runs: list/show/test and their --json forms, stack run, list, history,
status and top, orders show, retry, drop, and the errors people make with secrets.

Scanned: stdout and stderr of every command, every text column of every table of the
database except `stores.secrets` (where `--secret` values live by design; `--secret-env`
values must not be anywhere in the file), the log records of statusctl's loggers at any
level and of any logger at WARNING, and for the OSS server: its answers (bodies and
headers) and its log. A secret counts as leaked when any 12-character piece of it shows,
as it is or in the forms a request carries it: URL- or form-encoded, JSON-escaped, or
inside an HTTP Basic credential (base64 of "key:secret").

A second scan (issue 11.2) has the cart echo the request the way a PHP script writes it
(json_encode, with and without the JSON_HEX_* flags, htmlspecialchars in three quote
modes, urlencode in a link), every secret holding / + ' < > & " =, and counts those
forms as leaks too; the PHP encoders here are written from PHP's manual, and checked
against the real `php` when it is installed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from statusctl.carts.base import Context
from statusctl.cli.main import app
from statusctl.delivery.controller import drain
from statusctl.domain.stores import Store
from statusctl.domain.urls import MASK

from ..carts.fakeserver import Answer, FakeServer, Request

WINDOW = 12  # a piece this long of a secret is a leak


def whsec(tag: str) -> str:
    """A distinctive Standard Webhooks secret (32 bytes after whsec_, no two alike in any 12 characters)."""
    return "whsec_" + base64.b64encode(hashlib.sha256(tag.encode()).digest()).decode()


# Stored in the database by `--secret` (allowed there, and only there).
STORED = {
    "hook.secret": whsec("stored-hook"),
    "woo.key": "ck_LeakStoredWooKey0123456789abcdef",
    "bc.token": "LeakStoredBigCommerceToken9876543210",
    "oc.username": "LeakStoredOpenCartUser42",
    "oc.key": "LeakStoredOpenCartKey/with+slash&amp=99",
    "shop.token": "shpat_LeakStoredShopifyToken0011223344",
}
# Held in the environment by `--secret-env` (never in the database at all).
ENV = {
    "LEAK_HOOK_SECRET": whsec("env-hook"),
    "LEAK_WOO_SECRET": "cs_LeakEnvWooSecret_ZYXWVUTSRQ987654",
    "LEAK_SETI_USER": "LeakEnvSetiUser77",
    "LEAK_SETI_PASSWORD": "Leak Env Seti p@ss/w+rd&x=1 ü",
    "LEAK_MAGENTO_TOKEN": "LeakEnvMagentoBearerToken55667788",
    "LEAK_PRESTA_KEY": "LEAKENVPRESTASHOPWEBSERVICEKEY12",
    "LEAK_SHOPIFY_ID": "LeakEnvShopifyClientId314159",
    "LEAK_SHOPIFY_SECRET": "shpss_LeakEnvShopifyClientSecret2718",
    "STATUSCTL_OSS_SECRET": whsec("env-oss"),
}
# Credentials the fake carts hand out at run time (OpenCart session, Shopify access token).
RUNTIME = {
    "opencart api_token": "LeakRuntimeOpenCartApiToken0a1b2c3d",
    "shopify access_token": "shpat_LeakRuntimeShopifyAccess9z8y7x",
}

# name -> (cart, url path, --secret and --secret-env arguments, --option arguments)
STORES: dict[str, tuple[str, str, list[str], list[str]]] = {
    "hook": ("webhook", "/hook", ["--secret", f"secret={STORED['hook.secret']}"], []),
    "hookenv": ("webhook", "/hookenv", ["--secret-env", "secret=LEAK_HOOK_SECRET"], []),
    "woo": ("woocommerce", "/woo", ["--secret", f"key={STORED['woo.key']}", "--secret-env", "secret=LEAK_WOO_SECRET"],
            ["--option", "tracking=extension"]),
    "legacy": ("seti", "/seti/cart.php", ["--secret-env", "user=LEAK_SETI_USER", "--secret-env",
                                          "password=LEAK_SETI_PASSWORD"], ["--option", "code=LEAKCODE"]),
    "bc": ("bigcommerce", "/stores/abc123", ["--secret", f"token={STORED['bc.token']}"], []),
    "mage": ("magento2", "/mage", ["--secret-env", "token=LEAK_MAGENTO_TOKEN"], []),
    "shop": ("shopify", "/shop", ["--secret", f"token={STORED['shop.token']}"], []),
    "shopcc": ("shopify", "/shopcc", ["--secret-env", "client_id=LEAK_SHOPIFY_ID", "--secret-env",
                                      "client_secret=LEAK_SHOPIFY_SECRET"], []),
    "presta": ("prestashop", "/presta", ["--secret-env", "key=LEAK_PRESTA_KEY"], []),
    "oc": ("opencart", "/oc", ["--secret", f"username={STORED['oc.username']}", "--secret", f"key={STORED['oc.key']}"], []),
    "status": ("oss", "/api/updates", ["--secret-env", "secret=STATUSCTL_OSS_SECRET"], []),
    "phone": ("none", "/unused", [], []),
}


def secret_forms(value: str) -> set[str]:
    """The texts a secret travels as: itself, URL/form-encoded, JSON- and HTML-escaped."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1], html.escape(value)}
    forms |= set(value.split())  # each of several space-separated webhook secrets
    return {f for f in forms if len(f) >= 8}


def basic_forms(user: str, password: str) -> set[str]:
    """An HTTP Basic credential as the Authorization header carries it."""
    return {base64.b64encode(f"{user}:{password}".encode()).decode().rstrip("=")}


def pieces(text: str) -> set[str]:
    if len(text) <= WINDOW:
        return {text}
    return {text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)}


@dataclass
class Secrets:
    """Every secret, with the pieces whose appearance is a leak."""

    named: dict[str, set[str]] = field(default_factory=dict)  # secret name -> its forms

    def add(self, name: str, forms: set[str]) -> None:
        self.named.setdefault(name, set()).update(f for f in forms if len(f) >= 8)

    def leaks(self, text: str, names: set[str] | None = None) -> list[str]:
        found = []
        for name, forms in self.named.items():
            if names is not None and name not in names:
                continue
            for form in forms:
                if any(p in text for p in pieces(form)):
                    found.append(f"{name} (as {form[:20]!r}…)")
                    break
        return found


def all_secrets() -> Secrets:
    s = Secrets()
    for name, value in {**STORED, **ENV, **RUNTIME}.items():
        s.add(name, secret_forms(value))
    s.add("woo basic auth", basic_forms(STORED["woo.key"], ENV["LEAK_WOO_SECRET"]))
    s.add("prestashop basic auth", basic_forms(ENV["LEAK_PRESTA_KEY"], ""))
    return s


# -- the fake cart that echoes every request ---------------------------------------------


class Echo:
    """Answers every request with an error that repeats the request: credentials first."""

    FIRST = ("authorization", "x-auth-token", "x-shopify-access-token", "cookie")

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[Request] = []

    def echo(self, req: Request) -> str:
        heads = [f"{k}: {v}" for k, v in req.headers.items() if k in self.FIRST]
        rest = [f"{k}: {v}" for k, v in req.headers.items() if k not in self.FIRST]
        query = urlencode(req.query, doseq=True)
        return " | ".join([*heads, req.body.decode("utf-8", "replace"), f"{req.method} {req.path}?{query}", *rest])

    def __call__(self, req: Request) -> Answer:
        self.seen.append(req)
        self.count += 1
        if req.arg("route") == "api/login":
            return Answer(200, {"api_token": RUNTIME["opencart api_token"]})
        if req.path.endswith("/admin/oauth/access_token"):
            return Answer(200, {"access_token": RUNTIME["shopify access_token"], "expires_in": 86399, "scope": "x"})
        text = self.echo(req)
        if req.path.startswith("/oc"):  # OpenCart says what went wrong in a 200 answer
            return Answer(200, {"error": {"warning": text}})
        if req.path.endswith("graphql.json"):
            return Answer(200, {"errors": [{"message": text}], "data": None})
        body = {"code": "echo", "message": text, "errors": [{"message": text}], "error": text,
                "data": {"status": 400, "params": {"request": text}}}
        status = [422, 503, 400, 401, 302][self.count % 5]
        headers = {"location": f"http://127.0.0.1:1/login?{text[:200]}"} if status == 302 else {}
        if status == 503:
            headers["retry-after"] = "0"
        return Answer(status, body, headers)


# -- running commands and scanning -------------------------------------------------------------


@dataclass
class Scan:
    secrets: Secrets
    results: list[tuple[list[str], Result]] = field(default_factory=list)

    def run(self, *args: str, codes: tuple[int, ...] = (0,)) -> Result:
        from statusctl.cli import common

        common.set_db_option(None)
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400", "NO_COLOR": "1"})
        shown = f"statusctl {' '.join(args)}\nexit {result.exit_code}\nstdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"uncaught {result.exception!r}\n{shown}") from result.exception
        assert result.exit_code in codes, shown
        self.results.append((list(args), result))
        leaked = self.secrets.leaks(result.stdout + result.stderr)
        assert not leaked, f"{leaked} in the output of\n{shown}"
        return result


def database_text(db_file: Path, *, skip_secrets_column: bool) -> Iterator[tuple[str, str]]:
    """(table.column, value) for every text value in the database file."""
    conn = sqlite3.connect(db_file)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            for row in conn.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    if skip_secrets_column and (table, column) == ("stores", "secrets"):
                        continue
                    if isinstance(value, str):
                        yield f"{table}.{column}", value
                    elif isinstance(value, bytes):
                        yield f"{table}.{column}", value.decode("utf-8", "replace")
    finally:
        conn.close()


def orders_csv(path: Path, stores: list[str]) -> dict[str, str]:
    """One order per store (two items), written to one CSV per store; returns order -> store."""
    head = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity,cart_order_id,cart_line_id"
    out = {}
    for i, store in enumerate(stores, start=1):
        number = f"L-{store}"
        lines = [head, f"{number},2026-11-20,Lee Kan,lee@example.com,02139,SKU-A,Mug,2,{500 + i},{9000 + i}",
                 f"{number},2026-11-20,Lee Kan,lee@example.com,02139,SKU-B,Tee,1,{500 + i},{9100 + i}"]
        (path / f"{store}.csv").write_text("\n".join(lines) + "\n")
        out[number] = store
    return out


@pytest.fixture
def env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger="statusctl")
    return caplog


def test_no_command_shows_a_secret(env_secrets, logs, db_file, tmp_path):
    secrets = all_secrets()
    scan = Scan(secrets)
    echo = Echo()
    with FakeServer(echo) as server:
        scan.run("init")
        scan.run("config", "set", "UseStatusUpdates", "true")
        scan.run("config", "set", "StackMaxAttempts", "2")
        scan.run("config", "set", "StackRetrySchedule", "0.01")
        scan.run("events", "set", "order-on-hold", "--fire", "--notify-cart")
        for name, (cart, path, secret_args, options) in STORES.items():
            scan.run("stores", "add", name, "--cart", cart, "--url", server.base_url + path, *secret_args, *options)
        scan.run("oss", "set", "status")
        orders = orders_csv(tmp_path, list(STORES))
        for number, store in orders.items():
            scan.run("orders", "import", str(tmp_path / f"{store}.csv"), "--store", store)
            scan.run("fire", "order-approved", number)
            scan.run("ship", number, "--item", "SKU-A:1", "--tracking", "1Z999", "--carrier", "UPS", "--note", "Thanks")
            scan.run("fire", "order-on-hold", number, "--json")

        # What people look at, and what checks the carts.
        for name in STORES:
            shown = scan.run("stores", "show", name).stdout
            assert not STORES[name][2] or MASK in shown or "env:" in shown
            scan.run("stores", "show", name, "--json")
            scan.run("stores", "test", name, codes=(0, 1))
            scan.run("stores", "test", name, "--json", codes=(0, 1))
        scan.run("stores", "list")
        scan.run("stores", "list", "--json")
        # The setup wizard's flag form: its connection test meets the echo, and nothing is saved.
        for name in ("woo", "presta", "legacy", "oc", "shopcc"):
            cart, path, secret_args, options = STORES[name]
            scan.run("setup", "--yes", "--name", f"wiz-{name}", "--cart", cart, "--url", server.base_url + path,
                     *secret_args, *options, codes=(0, 1))
        scan.run("setup", "--yes", "--no-test", "--name", "wiz-saved", "--cart", "woocommerce", "--url",
                 server.base_url + "/woo", *STORES["woo"][2], codes=(0,))
        for args in (["carts", "--json"], ["config", "list", "--json"], ["labels", "list"], ["events", "list"]):
            scan.run(*args)

        # Delivery: every answer is an error that echoes the request.
        scan.run("stack", "list", "--json")
        scan.run("stack", "run", "--json", codes=(0, 3))
        scan.run("stack", "run", codes=(0, 3))
        scan.run("stack", "retry", "--failed")
        scan.run("stack", "run", "--concurrency", "4", codes=(0, 3))
        for args in (["stack", "list"], ["stack", "list", "--json"], ["stack", "list", "--failed", "--json"],
                     ["stack", "history"], ["stack", "history", "--json"], ["stack", "status"],
                     ["stack", "status", "--json"], ["stack", "top", "--once"], ["orders", "list", "--json"]):
            scan.run(*args)
        scan.run("stack", "status", "--check", codes=(0, 3))
        for number in orders:
            scan.run("orders", "show", number)
            scan.run("orders", "show", number, "--json")

        # The mistakes people make with secrets: the value must not come back in the error.
        for value in (ENV["LEAK_SETI_PASSWORD"], STORED["oc.key"], STORED["hook.secret"]):
            # The secret where the variable's name belongs (caught: no variable is named like that).
            scan.run("stores", "add", "oops1", "--cart", "woocommerce", "--url", "https://shop.example",
                     "--secret-env", f"key={value}", "--secret-env", "secret=LEAK_WOO_SECRET", codes=(1,))
        for value in (*ENV.values(), *STORED.values()):
            # The secret without its KEY= (and so with its own '=' or base64 padding taken for one).
            scan.run("stores", "add", "oops2", "--cart", "woocommerce", "--url", "https://shop.example",
                     "--secret", value, codes=(1,))
            scan.run("stores", "add", "oops2", "--cart", "woocommerce", "--url", "https://shop.example",
                     "--secret", f"{value}=", codes=(1,))
        scan.run("stores", "add", "oops3", "--cart", "webhook", "--url", "https://hooks.example/x",
                 "--secret", f"secret={ENV['LEAK_HOOK_SECRET']}x", codes=(1,))
        scan.run("stores", "add", "hook", "--cart", "webhook", "--url", "https://hooks.example/x",
                 "--secret", f"secret={STORED['hook.secret']}", codes=(1,))
        scan.run("stack", "drop", "--failed", "--yes")
        scan.run("stack", "history", "--json")
        scan.run("demo", "--json")  # the built-in flow, with every secret above in the environment
        assert echo.count > 20, "the fake cart saw too few requests for the scan to mean anything"

    # Every delivery attempt reached the fake, so the echoes were there to leak; the history
    # kept the answers, with the credentials masked.
    assert any("authorization" in r.headers for r in echo.seen)
    answers = [v for where, v in database_text(db_file, skip_secrets_column=True) if where == "stack_history.answer"]
    assert sum("••••••" in a for a in answers) >= 5, answers[:5]
    for where, value in database_text(db_file, skip_secrets_column=True):
        leaked = secrets.leaks(value)
        assert not leaked, f"{leaked} in {where}: {value[:300]!r}"
    env_only = {name for name in secrets.named if name in ENV}
    for where, value in database_text(db_file, skip_secrets_column=False):
        leaked = secrets.leaks(value, env_only)
        assert not leaked, f"--secret-env value {leaked} stored in {where}"
    raw = db_file.read_bytes() + (Path(f"{db_file}-wal").read_bytes() if Path(f"{db_file}-wal").exists() else b"")
    for name in env_only:
        assert ENV[name].encode() not in raw, f"{name} is in the database file"
    for record in logs.records:
        leaked = secrets.leaks(record.getMessage())
        assert not leaked, f"{leaked} in a log record: {record.getMessage()[:300]!r}"


def test_a_transport_error_naming_the_url_is_scrubbed_before_it_is_cut(env_secrets, db_file, tmp_path):
    """An exception text holding a secret past its 200th character kept the secret's first part."""
    scan = Scan(all_secrets())
    scan.run("init")
    scan.run("config", "set", "UseStatusUpdates", "true")
    scan.run("config", "set", "StackMaxAttempts", "1")
    scan.run("stores", "add", "woo", "--cart", "woocommerce", "--url", "https://shop.example",
             "--secret", f"key={STORED['woo.key']}", "--secret-env", "secret=LEAK_WOO_SECRET")
    orders_csv(tmp_path, ["woo"])
    scan.run("orders", "import", str(tmp_path / "woo.csv"), "--store", "woo")
    scan.run("fire", "order-approved", "L-woo")

    def refuse(request: httpx.Request) -> httpx.Response:
        # As a proxy or a library may word it: the text names what was sent, credentials included.
        raise httpx.ConnectError(f"proxy refused {'x' * 170} {request.headers.get('authorization')} "
                                 f"key={STORED['woo.key']} secret={ENV['LEAK_WOO_SECRET']}", request=request)

    drain(db_file, transport=httpx.MockTransport(refuse))
    for where, value in database_text(db_file, skip_secrets_column=True):
        leaked = scan.secrets.leaks(value)
        assert not leaked, f"{leaked} in {where}: {value[:300]!r}"
    assert "network error" in json.dumps(list(database_text(db_file, skip_secrets_column=True)))


@pytest.mark.parametrize(
    ("secrets", "text"),
    [
        ({"key": "ck_abcdefgh12345678", "secret": "cs_zyxwvuts87654321"},
         "Authorization: Basic " + base64.b64encode(b"ck_abcdefgh12345678:cs_zyxwvuts87654321").decode()),
        ({"key": "PRESTAKEY1234567890"}, "Basic " + base64.b64encode(b"PRESTAKEY1234567890:").decode()),
        ({"password": "p@ss/w+rd&x=1 ü"}, "setiuser=bob&password=" + quote_plus("p@ss/w+rd&x=1 ü")),
        ({"password": "p@ss/w+rd&x=1 ü"}, "?password=" + quote("p@ss/w+rd&x=1 ü", safe="")),
        ({"token": 'tok"en\\with/escapes'}, json.dumps({"token": 'tok"en\\with/escapes'})),
        ({"secret": f"{whsec('a')} {whsec('b')}"}, f"old key {whsec('b')} rotated"),
    ],
)
def test_scrub_hides_the_forms_a_secret_travels_in(secrets: dict[str, str], text: str):
    ctx = Context(Store("s", "webhook", "https://x"), dict(secrets))
    scrubbed = ctx.scrub(text)
    s = Secrets()
    for name, value in secrets.items():
        s.add(name, secret_forms(value))
    s.add("basic", basic_forms(secrets.get("key", ""), secrets.get("secret", "")))
    assert not s.leaks(scrubbed), scrubbed
    assert not s.leaks(ctx.excerpt(text)), ctx.excerpt(text)


# -- the Order Status System ------------------------------------------------------------------


class LogTap(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_oss_never_shows_its_secret(env_secrets, db_file, tmp_path):
    """The OSS with its key from STATUSCTL_OSS_SECRET: answers and log hold no part of it."""
    from statusctl.carts import signing
    from statusctl.oss.links import derive_link_key
    from statusctl.oss.server import Background, secrets_from_env

    oss_secret = ENV["STATUSCTL_OSS_SECRET"]
    secrets = Secrets()
    secrets.add("oss secret", secret_forms(oss_secret))
    key = derive_link_key(oss_secret)
    secrets.add("oss link key", {key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("="),
                                 base64.b64encode(key).decode().rstrip("=")})
    secrets.add("oss raw key", {signing.secret_bytes(oss_secret).hex()})
    tap = LogTap()
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "statusctl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(tap)
    scan = Scan(secrets)
    answers: list[str] = []
    try:
        with Background.oss(tmp_path / "oss.db", secrets_from_env()) as oss:
            for lg in loggers:
                lg.setLevel(logging.DEBUG)
            scan.run("init")
            scan.run("config", "set", "UseStatusUpdates", "true")
            scan.run("stores", "add", "status", "--cart", "oss", "--url", oss.url + "/api/updates",
                     "--secret-env", "secret=STATUSCTL_OSS_SECRET")
            scan.run("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example")
            scan.run("oss", "set", "status")
            orders_csv(tmp_path, ["phone"])
            scan.run("orders", "import", str(tmp_path / "phone.csv"), "--store", "phone")
            scan.run("fire", "order-approved", "L-phone")
            scan.run("ship", "L-phone", "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
            scan.run("stores", "test", "status", codes=(0, 1))
            scan.run("stack", "run", "--json")
            scan.run("stack", "history", "--json")
            with httpx.Client(base_url=oss.url, follow_redirects=False, timeout=10) as client:
                body = json.dumps({"id": "su_x", "order": {}}).encode()
                wrong = signing.headers(whsec("not-the-oss"), "su_x", body)
                calls = [
                    client.post("/api/updates", content=body, headers={**wrong, "content-type": "application/json"}),
                    client.post("/api/updates", content=body, headers=signing.headers(oss_secret, "su_x", body)),
                    client.post("/api/updates", content=b"{" * 5000, headers=signing.headers(oss_secret, "su_y", b"{" * 5000)),
                    client.post("/api/updates", content=body, headers={"webhook-id": "x", "webhook-timestamp": "1",
                                                                        "webhook-signature": f"v1,{oss_secret}"}),
                    client.get("/"), client.get("/healthz"), client.get("/api/orders/L-phone"),
                    client.post("/lookup", data={"order": "L-phone", "postal_code": "02139"}),
                    client.post("/lookup", data={"order": "L-phone", "postal_code": "99999"}),
                    client.get("/o/not-a-token"), client.get("/static/oss.css"),
                ]
                for r in calls:
                    answers.append(f"{r.status_code} {dict(r.headers)} {r.text}")
                    if r.status_code in (302, 303, 307) and r.headers.get("location", "").startswith("/o/"):
                        page = client.get(r.headers["location"])
                        answers.append(f"{page.status_code} {dict(page.headers)} {page.text}")
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(tap)
            lg.setLevel(level)
    assert any(a.startswith("401") for a in answers), "the wrongly signed update was not refused"
    for text in answers + tap.lines:
        leaked = secrets.leaks(text)
        assert not leaked, f"{leaked} in an OSS answer or log line: {text[:300]!r}"
    for where, value in database_text(db_file, skip_secrets_column=False):
        assert not secrets.leaks(value), f"the OSS secret is in {where}"
    for where, value in database_text(tmp_path / "oss.db", skip_secrets_column=False):
        assert not secrets.leaks(value), f"the OSS secret is in the OSS database, {where}"


def test_oss_serve_refuses_a_bad_secret_without_showing_it(monkeypatch: pytest.MonkeyPatch, db_file):
    secrets = Secrets()
    bad = "not-a-whsec-LeakOssMistake123456"
    short = "whsec_" + base64.b64encode(b"LeakShortKey").decode()
    secrets.add("bad", secret_forms(bad))
    secrets.add("short", secret_forms(short))
    scan = Scan(secrets)
    for value in (bad, short, f"{ENV['STATUSCTL_OSS_SECRET']} {bad}"):
        monkeypatch.setenv("STATUSCTL_OSS_SECRET", value)
        result = scan.run("oss", "serve", "--port", "1", codes=(1,))
        assert result.stderr.startswith("Error: "), result.stderr
    monkeypatch.delenv("STATUSCTL_OSS_SECRET")
    assert "STATUSCTL_OSS_SECRET" in scan.run("oss", "serve", "--port", "1", codes=(1,)).stderr


# -- answers that echo the request through PHP's encodings --------------------------------------
#
# The encoders below are written from PHP's manual (json_encode, htmlspecialchars, urlencode),
# independently of statusctl's scrubber, so that the scan checks it rather than repeats it.

SPECIAL = "/+'<>&\"="  # every secret below holds all of these


def php_json(text: str, *, hex_flags: bool = False) -> str:
    """json_encode's string body: '/' as '\\/', non-ASCII as \\u00xx; with JSON_HEX_TAG|AMP|APOS|QUOT
    also < > & ' " as \\u003C \\u003E \\u0026 \\u0027 \\u0022 (PHP writes those in upper case)."""
    out = json.dumps(text)[1:-1].replace("/", "\\/")
    if hex_flags:
        out = out.replace('\\"', "\\u0022")
        for ch in "<>&'":
            out = out.replace(ch, f"\\u{ord(ch):04X}")
    return out


def htmlspecialchars(text: str, quotes: str = "ENT_QUOTES") -> str:
    """PHP's htmlspecialchars: ENT_QUOTES (PHP 8.1's default) writes ' as &#039;, ENT_HTML5 as
    &apos;, ENT_COMPAT (the default before 8.1) leaves it."""
    out = text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("'", {"ENT_QUOTES": "&#039;", "ENT_HTML5": "&apos;", "ENT_COMPAT": "'"}[quotes])


def php_urlencode(text: str) -> str:
    """PHP's urlencode: form encoding that also writes '~' as %7E."""
    return quote_plus(text, safe="").replace("~", "%7E")


PHP_PAGES: dict[str, tuple[str, object]] = {
    # name -> (content type, how the page writes the echoed request)
    "json_encode": ("application/json", lambda t: '{"error":"' + php_json(t) + '","code":"echo"}'),
    "json_encode hex flags": ("application/json", lambda t: '{"message":"' + php_json(t, hex_flags=True) + '"}'),
    "htmlspecialchars": ("text/html", lambda t: f"<html><body><h1>Error</h1><pre>{htmlspecialchars(t)}</pre>"),
    "htmlspecialchars ENT_HTML5": ("text/html", lambda t: f"<p>{htmlspecialchars(t, 'ENT_HTML5')}</p>"),
    "htmlspecialchars ENT_COMPAT": ("text/html", lambda t: f"<p>{htmlspecialchars(t, 'ENT_COMPAT')}</p>"),
    "urlencode in a link": ("text/html", lambda t: f'<a href="/retry?q={php_urlencode(t)}">retry</a>'),
}

PHP_STORED = {
    "bc.token": "BcPhp/Token+It's<b>&\"q\"=0123",
    "shop.token": "shpat_Php/Shop+It's<i>&\"s\"=4567",
}
PHP_ENV = {
    "PHP_WOO_KEY": "ck_Php/WooKey+It's<u>&\"k\"=8901",
    "PHP_WOO_SECRET": "cs_Php/WooSecret+It's<x>&\"w\"=2345",
    "PHP_SETI_USER": "PhpSeti/User+It's<y>&\"u\"=6789",
    "PHP_SETI_PASSWORD": "Php Seti/Pass+It's <z>&\"p\"=ü0123",
    "PHP_MAGENTO_TOKEN": "PhpMagento/Bearer+It's<m>&\"t\"=4567",
    "PHP_PRESTA_KEY": "PhpPresta/Key+It's<p>&\"r\"=8901",
    "PHP_OC_KEY": "PhpOpenCart/Key+It's<o>&\"c\"=2345",
    "PHP_SHOPIFY_SECRET": "shpss_Php/Client+It's<c>&\"e\"=6789",
    "PHP_HOOK_SECRET": whsec("php-hook"),
}
PHP_RUNTIME = {
    "opencart api_token": "PhpRuntime/OcToken+It's<a>&\"o\"=0a1b",
    "shopify access_token": "shpat_PhpRuntime/Access+It's<a>&\"a\"=9z8y",
}
PHP_STORES: dict[str, tuple[str, str, list[str], list[str]]] = {
    "hook": ("webhook", "/hook", ["--secret-env", "secret=PHP_HOOK_SECRET"], []),
    "woo": ("woocommerce", "/woo", ["--secret-env", "key=PHP_WOO_KEY", "--secret-env", "secret=PHP_WOO_SECRET"], []),
    "legacy": ("seti", "/seti/cart.php", ["--secret-env", "user=PHP_SETI_USER", "--secret-env",
                                          "password=PHP_SETI_PASSWORD"], []),
    "bc": ("bigcommerce", "/stores/abc123", ["--secret", f"token={PHP_STORED['bc.token']}"], []),
    "mage": ("magento2", "/mage", ["--secret-env", "token=PHP_MAGENTO_TOKEN"], []),
    "shop": ("shopify", "/shop", ["--secret", f"token={PHP_STORED['shop.token']}"], []),
    "shopcc": ("shopify", "/shopcc", ["--secret-env", "client_id=PHP_SETI_USER", "--secret-env",
                                      "client_secret=PHP_SHOPIFY_SECRET"], []),
    "presta": ("prestashop", "/presta", ["--secret-env", "key=PHP_PRESTA_KEY"], []),
    "oc": ("opencart", "/oc", ["--secret-env", "username=PHP_SETI_USER", "--secret-env", "key=PHP_OC_KEY"], []),
}


def php_secrets() -> Secrets:
    s = Secrets()
    for name, value in {**PHP_STORED, **PHP_ENV, **PHP_RUNTIME}.items():
        s.add(name, secret_forms(value) | {php_json(value), php_json(value, hex_flags=True), php_urlencode(value)}
              | {htmlspecialchars(value, q) for q in ("ENT_QUOTES", "ENT_HTML5", "ENT_COMPAT")})
    s.add("woo basic auth", basic_forms(PHP_ENV["PHP_WOO_KEY"], PHP_ENV["PHP_WOO_SECRET"]))
    s.add("prestashop basic auth", basic_forms(PHP_ENV["PHP_PRESTA_KEY"], ""))
    return s


class PhpEcho(Echo):
    """The echoing cart as a PHP script writes it: the request through one of PHP's encodings, as bytes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.content_type, self.write = PHP_PAGES[page]

    def __call__(self, req: Request) -> Answer:
        self.seen.append(req)
        self.count += 1
        if req.arg("route") == "api/login":
            return Answer(200, {"api_token": PHP_RUNTIME["opencart api_token"]})
        if req.path.endswith("/admin/oauth/access_token"):
            return Answer(200, {"access_token": PHP_RUNTIME["shopify access_token"], "expires_in": 86399, "scope": "x"})
        page = self.write(self.echo(req))  # type: ignore[operator]
        # OpenCart and Shopify's GraphQL say what went wrong in a 200 answer; the rest in an error status.
        status = 200 if req.path.startswith("/oc") or req.path.endswith("graphql.json") else [422, 503, 400, 401][self.count % 4]
        headers = {"content-type": f"{self.content_type}; charset=utf-8"}
        if status == 503:
            headers["retry-after"] = "0"
        return Answer(status, page.encode(), headers)


@pytest.mark.parametrize("page", list(PHP_PAGES))
def test_secrets_echoed_through_php_encodings_never_show(page: str, monkeypatch, db_file, tmp_path):
    """A cart that echoes the request through json_encode, htmlspecialchars or urlencode: every
    secret (each holds / + ' < > & " =) of every cart type is masked in outputs and stored rows."""
    for name, value in PHP_ENV.items():
        monkeypatch.setenv(name, value)
    secrets = php_secrets()
    scan = Scan(secrets)
    echo = PhpEcho(page)
    with FakeServer(echo) as server:
        scan.run("init")
        scan.run("config", "set", "UseStatusUpdates", "true")
        scan.run("config", "set", "StackMaxAttempts", "2")
        scan.run("config", "set", "StackRetrySchedule", "0.01")
        for name, (cart, path, secret_args, options) in PHP_STORES.items():
            scan.run("stores", "add", name, "--cart", cart, "--url", server.base_url + path, *secret_args, *options)
        orders = orders_csv(tmp_path, list(PHP_STORES))
        for number, store in orders.items():
            scan.run("orders", "import", str(tmp_path / f"{store}.csv"), "--store", store)
            scan.run("ship", number, "--item", "SKU-A:1", "--tracking", "1Z999", "--carrier", "UPS", "--note", "Thanks")
        for name in PHP_STORES:
            scan.run("stores", "test", name, codes=(0, 1))
            scan.run("stores", "test", name, "--json", codes=(0, 1))
        scan.run("stack", "run", codes=(0, 3))
        scan.run("stack", "run", "--json", codes=(0, 3))
        for args in (["stack", "list"], ["stack", "list", "--json"], ["stack", "history"],
                     ["stack", "history", "--json"], ["stack", "status"], ["stack", "top", "--once"]):
            scan.run(*args)
        for number in orders:
            scan.run("orders", "show", number)
    assert any("authorization" in r.headers for r in echo.seen)
    rows = list(database_text(db_file, skip_secrets_column=True))
    answers = [v for where, v in rows if where in ("stack_history.answer", "stack.last_answer", "stack_history.reason")]
    assert sum("••••••" in a for a in answers) >= 5, answers[:5]
    for where, value in rows:
        leaked = secrets.leaks(value)
        assert not leaked, f"{leaked} in {where}: {value[:300]!r}"
    env_only = {name for name in secrets.named if name in PHP_ENV}
    for where, value in database_text(db_file, skip_secrets_column=False):
        assert not secrets.leaks(value, env_only), f"a --secret-env value is stored in {where}"


PHP_ENCODE = """
$s = stream_get_contents(STDIN);
echo json_encode($s), "\\n", json_encode($s, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT), "\\n",
     json_encode([$s], JSON_UNESCAPED_UNICODE), "\\n", htmlspecialchars($s), "\\n", htmlspecialchars($s, ENT_COMPAT), "\\n",
     htmlspecialchars($s, ENT_QUOTES | ENT_HTML5), "\\n", urlencode($s), "\\n", rawurlencode($s), "\\n", addslashes($s), "\\n",
     htmlspecialchars(json_encode($s)), "\\n", json_encode(urlencode($s)), "\\n", var_export($s, true), "\\n";
"""


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")
@pytest.mark.parametrize("secret", [PHP_ENV["PHP_SETI_PASSWORD"], PHP_STORED["bc.token"], PHP_ENV["PHP_MAGENTO_TOKEN"],
                                    f"all{SPECIAL}of{SPECIAL}them \\ ~ é"])
def test_scrub_masks_what_real_php_writes(secret: str):
    """The real PHP's json_encode, htmlspecialchars, urlencode, addslashes, var_export (and one inside another)."""
    written = subprocess.run(["php", "-r", PHP_ENCODE], input=secret.encode(), capture_output=True, check=True).stdout.decode()
    assert php_json(secret) in written and htmlspecialchars(secret) in written  # the emulation above is PHP's
    ctx = Context(Store("s", "seti", "https://x"), {"password": secret})
    s = Secrets()
    s.add("secret", {secret, *secret.split()})
    for line in written.splitlines():
        assert not s.leaks(ctx.scrub(line)) and "••••••" in ctx.scrub(line), (line, ctx.scrub(line))
        # and no piece of what PHP wrote is left either
        assert not any(p in ctx.scrub(line) for p in pieces(line) if len(line) >= WINDOW), (line, ctx.scrub(line))


@pytest.mark.parametrize(
    "text",
    [
        "token was BcPhp/Token+It… (cut by the cart)",  # a cart that shows only the start
        "…Token+It's<b>&\"q\"=0123 at the end",  # or only the end
        "BcPhp%2FToken%2BIt%27s%3Cb%3E%26%22q%22%3D0123",  # percent-encoded, upper-case hex
        "BcPhp%2fToken%2bIt%27s%3cb%3e%26%22q%22%3d0123",  # and lower-case hex
        "BcPhp\\/Token+It\\u0027s\\u003cb\\u003E\\u0026\\u0022q",  # JSON_HEX_*, hex in mixed case
        "BcPhp%252FToken%252BIt%2527s",  # encoded twice
        "QmNQaHAvVG9rZW4rSXQncz",  # base64 of the token alone
    ],
)
def test_scrub_masks_pieces_and_forms_of_a_secret(text: str):
    ctx = Context(Store("s", "bigcommerce", "https://x"), {"token": PHP_STORED["bc.token"]})
    assert "••••••" in ctx.scrub(text), ctx.scrub(text)
    s = Secrets()
    s.add("token", secret_forms(PHP_STORED["bc.token"]) | {php_json(PHP_STORED["bc.token"])})
    assert not s.leaks(ctx.scrub(text)) and not s.leaks(ctx.excerpt(text))
