"""`statusctl stores set`, `--secret KEY=-`, credentials inside URLs, and the store option checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from statusctl.storage.stores import get_store

from .carts.fake_woocommerce import KEY, SECRET, WooFake
from .carts.fakeserver import Answer, FakeServer, Request, free_port_refusing
from .helpers import EXAMPLES, WEBHOOK_SECRET, cli, cli_json, dump, error_of, open_db, updates_on

WRONG = "cs_this-is-the-WRONG-secret-0000"


@pytest.fixture
def woo() -> Iterator[FakeServer]:
    with FakeServer(WooFake()) as server:
        yield server


def stored(name: str = "shop") -> dict[str, object]:
    db = open_db()
    try:
        store = get_store(db, name)
    finally:
        db.close()
    return {"url": store.url, "secrets": store.secrets, "options": store.options}


def add_woo(url: str, secret: str = WRONG) -> None:
    cli("stores", "add", "shop", "--cart", "woocommerce", "--url", url, "--secret", f"key={KEY}",
        "--secret", f"secret={secret}")


# -- stores set ----------------------------------------------------------------------------


def test_set_changes_a_store_with_orders_in_place_after_testing_it(woo: FakeServer):
    add_woo(woo.base_url)
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "shop")
    before = dump()
    message = error_of("stores", "set", "shop", "--secret", "secret=cs_still-WRONG-000000000")
    assert "Testing the new settings of store 'shop' failed" in message and "nothing was changed" in message
    assert "cs_still-WRONG" not in message and dump() == before
    out = cli("stores", "set", "shop", "--secret", f"secret={SECRET}", "--option", "tracking=note").stdout
    assert "Store 'shop' changed: secret secret, option tracking; test OK: WooCommerce REST wc/v3" in out
    assert SECRET not in out
    assert stored()["secrets"] == {"key": {"value": KEY}, "secret": {"value": SECRET}}
    assert stored()["options"] == {"tracking": "note"}
    assert len(cli_json("orders", "list", "--store", "shop")) == 6  # its orders stay


def test_set_url_is_tested_unless_no_test(woo: FakeServer):
    add_woo(woo.base_url, SECRET)
    nowhere = free_port_refusing()
    before = dump()
    assert "nothing was changed" in error_of("stores", "set", "shop", "--url", nowhere)
    assert dump() == before
    out = cli("stores", "set", "shop", "--url", nowhere, "--no-test").stdout
    assert "changed: url; not tested (--no-test)" in out
    assert stored()["url"] == nowhere


def test_set_replaces_a_secret_by_variable_and_keeps_the_rest(woo: FakeServer, monkeypatch: pytest.MonkeyPatch):
    add_woo(woo.base_url)
    monkeypatch.setenv("WC_SECRET_VAR", SECRET)
    cli("stores", "set", "shop", "--secret-env", "secret=WC_SECRET_VAR")
    assert stored()["secrets"] == {"key": {"value": KEY}, "secret": {"env": "WC_SECRET_VAR"}}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--url", "ftp://x.example"], "absolute http:// or https:// URL"),
        (["--option", "timeout=nan"], "positive number of seconds"),
        (["--option", "colour=red"], "not an option of woocommerce"),
        (["--secret", "token=abc"], "takes the secret(s) key, secret"),
    ],
)
def test_set_validates_like_add_and_changes_nothing(woo: FakeServer, args: list[str], fragment: str):
    add_woo(woo.base_url, SECRET)
    before = dump()
    assert fragment in error_of("stores", "set", "shop", *args)
    assert dump() == before


def test_set_with_nothing_to_change_is_a_usage_error(woo: FakeServer):
    add_woo(woo.base_url, SECRET)
    before = dump()
    r = cli("stores", "set", "shop", code=2)
    assert "Nothing to change: give --url, --secret, --secret-env or --option." in r.stderr
    assert "Usage:" in r.stderr and r.stdout == "" and dump() == before


def test_set_an_unknown_store():
    cli("init")
    assert "Unknown store 'nope'" in error_of("stores", "set", "nope", "--url", "https://x.example")


def test_add_says_how_to_change_an_existing_store():
    cli("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example")
    assert "stores set phone" in error_of("stores", "add", "phone", "--cart", "none", "--url", "https://x.example")


# -- --secret KEY=- ------------------------------------------------------------------------


def test_a_secret_read_from_stdin_stays_off_the_command_line():
    out = cli("stores", "add", "web", "--cart", "webhook", "--url", "http://127.0.0.1:9/hook",
              "--secret", "secret=-", input=WEBHOOK_SECRET + "\n").stdout
    assert WEBHOOK_SECRET not in out
    assert stored("web")["secrets"] == {"secret": {"value": WEBHOOK_SECRET}}
    assert "no value was read from stdin" in error_of(
        "stores", "add", "web2", "--cart", "webhook", "--url", "http://127.0.0.1:9/hook", "--secret", "secret=-")


def test_stores_set_reads_a_secret_from_stdin_too():
    cli("stores", "add", "legacy", "--cart", "seti", "--url", "http://127.0.0.1:9/cart.php",
        "--secret", "user=bob", "--secret", "password=old-password-1")
    cli("stores", "set", "legacy", "--secret", "password=-", "--no-test", input="new-password-2\n")
    assert stored("legacy")["secrets"]["password"] == {"value": "new-password-2"}  # type: ignore[index]


# -- credentials inside a URL -----------------------------------------------------------------

URL_PASSWORD = "url-Pa55word-hidden"
URL_TOKEN = "tok-0123456789abcdef"


def test_credentials_in_a_url_are_masked_in_list_show_and_json():
    url = f"https://bob:{URL_PASSWORD}@phone.example/orders?route=x&access_token={URL_TOKEN}"
    out = cli("stores", "add", "phone", "--cart", "none", "--url", url).stdout
    texts = [out, cli("stores", "list").stdout, cli("stores", "show", "phone").stdout,
             str(cli_json("stores", "list")), str(cli_json("stores", "show", "phone"))]
    for text in texts:
        assert URL_PASSWORD not in text and URL_TOKEN not in text and "bob" not in text
    assert cli_json("stores", "show", "phone")["url"] == "https://••••••@phone.example/orders?route=x&access_token=••••••"
    assert stored("phone")["url"] == url  # stored as given: the adapter needs it


def test_credentials_in_a_url_are_masked_in_errors_tests_and_history():
    def echo(request: Request) -> Answer:  # a proxy error page that echoes the request
        return Answer(403, f"forbidden: {request.path}?access_token={request.arg('access_token')}")

    with FakeServer(echo) as server:
        cli("init")
        updates_on()
        url = f"{server.base_url}/hook?access_token={URL_TOKEN}"
        cli("stores", "add", "web", "--cart", "webhook", "--url", url, "--secret", f"secret={WEBHOOK_SECRET}")
        cli("orders", "import", EXAMPLES / "orders.csv", "--store", "web")
        cli("fire", "order-approved", "1002")
        ran = cli("stack", "run", code=3)
        history = cli("stack", "history").stdout + str(cli_json("stack", "history"))
        failed = str(cli_json("stack", "list", "--failed"))
    assert "forbidden" in history
    for text in (ran.stdout, ran.stderr, history, failed):
        assert URL_TOKEN not in text
    nowhere = free_port_refusing().replace("http://", f"http://bob:{URL_PASSWORD}@")
    cli("stores", "add", "legacy", "--cart", "seti", "--url", f"{nowhere}/cart.php", "--secret", "user=bob",
        "--secret", "password=seti-password")
    tested = cli("stores", "test", "legacy", code=1)
    assert "cannot reach" in tested.stdout + tested.stderr
    assert URL_PASSWORD not in tested.stdout + tested.stderr
    message = error_of("stores", "add", "bad", "--cart", "none", "--url", f"ftp://bob:{URL_PASSWORD}@x.example")
    assert URL_PASSWORD not in message and "ftp://••••••@x.example" in message


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://app:s3cr@t!pw@db.example/shop", "postgresql://••••••@db.example/shop"),
    ("https://app:a/b#c?d@shop.example/x?token=t1#frag", "https://••••••@shop.example/x?token=••••••#frag"),
    ("https://tok3n@shop.example/", "https://••••••@shop.example/"),
    ("https://shop.example/p?sslpassword=pw&&page=2", "https://shop.example/p?sslpassword=••••••&&page=2"),
    ("https://shop.example:8443/users/me@x.example?a=1", "https://shop.example:8443/users/me@x.example?a=1"),
])
def test_mask_url_hides_the_whole_userinfo_and_credential_parameters(url: str, shown: str):
    from statusctl.domain.urls import mask_url, url_credentials

    assert mask_url(url) == shown
    for value in url_credentials(url):
        assert value not in mask_url(url)


# -- option and URL values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--option", "timeout=nan"], "timeout='nan' must be a positive number of seconds"),
        (["--option", "timeout=inf"], "timeout='inf' must be a positive number of seconds"),
        (["--option", "connect_timeout=-inf"], "must be a positive number of seconds"),
        (["--url", "https://shop.example:99999/"], "has a port that is not a number from 1 to 65535"),
        (["--url", "https://shop.example:0/"], "has a port that is not a number from 1 to 65535"),
        (["--url", "https://shop.example:http/"], "has a port that is not a number from 1 to 65535"),
        (["--option", "max_in_flight=²"], "max_in_flight='²' must be a whole number from 1 to"),  # '²'.isdigit()
        (["--option", "max_in_flight=" + "1" * 5000], "max_in_flight='111"),  # int() refuses 4301 digits
    ],
)
def test_unusable_option_and_url_values_are_refused(args: list[str], fragment: str):
    cli("init")
    before = dump()
    extra = [] if "--url" in args else ["--url", "https://shop.example"]
    assert fragment in error_of("stores", "add", "x", "--cart", "none", *extra, *args)
    assert dump() == before


# -- a --secret-env variable not set in this shell ---------------------------------------------

UNSET = "STATUSCTL_TEST_NOT_SET_XX"


def assert_warns_unset(stderr: str, store: str) -> None:
    assert stderr.startswith("Warning: "), stderr
    assert UNSET in stderr and repr(store) in stderr and "waiting" in stderr and "misconfigured" in stderr, stderr


def test_saving_a_store_whose_secret_env_is_unset_warns_but_succeeds(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(UNSET, raising=False)
    cli("init")
    hook = ["--cart", "webhook", "--url", "http://127.0.0.1:9/hook"]
    added = cli("stores", "add", "web", *hook, "--secret-env", f"secret={UNSET}")
    assert "added" in added.stdout
    assert_warns_unset(added.stderr, "web")
    assert "not set" in cli("stores", "test", "web", code=1).stderr  # the test still fails without it
    changed = cli("stores", "set", "web", "--option", "timeout=9", "--no-test")
    assert "changed" in changed.stdout
    assert_warns_unset(changed.stderr, "web")
    made = cli("setup", "--name", "web2", *hook, "--secret-env", f"secret={UNSET}", "--no-test", "--yes")
    assert_warns_unset(made.stderr, "web2")
    monkeypatch.setenv(UNSET, WEBHOOK_SECRET)
    quiet = cli("stores", "add", "web3", *hook, "--secret-env", f"secret={UNSET}", env={UNSET: WEBHOOK_SECRET})
    assert "Warning" not in quiet.stderr
