"""`statusctl stores`, `carts` and `oss set`: validation, masked secrets, where records go."""

from __future__ import annotations

import json

import pytest

from statusctl.core import stores
from statusctl.domain.errors import ConfigError, InputError
from statusctl.domain.matrix import CART_TYPES
from statusctl.domain.stores import Store
from statusctl.domain.urls import MASK
from statusctl.storage.stores import get_store

from .helpers import (
    EXAMPLES,
    OTHER_SECRET,
    WEBHOOK_SECRET,
    add_webhook_store,
    cli,
    cli_json,
    dump,
    error_of,
    open_db,
)

SETI_PASSWORD = "hunter2-Very-Secret-Pass"
ENV_SECRET = "whsec_" + "RW52aXJvbm1lbnQtb25seS1zZWNyZXQta2V5LTEyMzQ="  # valid base64, 33 bytes


def add_seti(name: str = "legacy", port: int = 1) -> None:
    cli("stores", "add", name, "--cart", "seti", "--url", f"http://127.0.0.1:{port}/cart.php",
        "--secret", "user=bob", "--secret", f"password={SETI_PASSWORD}", "--option", "code=S1")


def add_none(name: str = "phone") -> None:
    cli("stores", "add", name, "--cart", "none", "--url", "https://phone-orders.example")


# -- carts -------------------------------------------------------------------------------


def test_carts_json_is_the_matrix():
    rows = cli_json("carts")
    assert [r["cart"] for r in rows] == list(CART_TYPES)
    by = {r["cart"]: r for r in rows}
    assert by["none"]["accepts_updates"] is False
    assert by["webhook"]["accepts_updates"] is True
    assert by["woocommerce"]["secrets"] == ["key", "secret"]


def test_carts_table():
    out = cli("carts").stdout
    for name in CART_TYPES:
        assert name in out


# -- stores add / list / show ------------------------------------------------------------


def test_add_list_show_webhook_store():
    out = cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/statusctl",
              "--secret", f"secret={WEBHOOK_SECRET}", "--option", "timeout=12").stdout
    assert "the cart itself (webhook)" in out
    rows = cli_json("stores", "list")
    assert rows == [{
        "name": "web", "cart": "webhook", "url": "https://hooks.example/statusctl",
        "secrets": {"secret": MASK}, "options": {"timeout": "12"},
        "limits": {"max_in_flight": 32, "rate": None}, "destination": "web",
        "destination_text": "the cart itself (webhook)", "is_oss": False, "label_note": None,
    }]
    assert cli_json("stores", "show", "web") == rows[0]


def test_secret_env_stores_only_the_variable_name(db_file, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEB_HOOK_KEY", ENV_SECRET)
    cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/x",
        "--secret-env", "secret=WEB_HOOK_KEY")
    shown = cli_json("stores", "show", "web")
    assert shown["secrets"] == {"secret": "env:WEB_HOOK_KEY"}
    db = open_db()
    try:
        store = get_store(db, "web")
        assert store.secrets == {"secret": {"env": "WEB_HOOK_KEY"}}
        assert store.resolve_secrets() == {"secret": ENV_SECRET}
    finally:
        db.close()
    for path in db_file.parent.glob(db_file.name + "*"):
        assert ENV_SECRET.encode() not in path.read_bytes(), path


def test_secret_given_by_value_is_stored():
    add_webhook_store()
    db = open_db()
    try:
        assert get_store(db, "web").resolve_secrets() == {"secret": WEBHOOK_SECRET}
    finally:
        db.close()


def test_missing_env_variable_is_a_config_error_when_resolving(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/x",
        "--secret-env", "secret=NOT_SET_ANYWHERE")
    db = open_db()
    try:
        with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
            get_store(db, "web").resolve_secrets()
    finally:
        db.close()


def test_test_reports_a_missing_env_variable_even_without_a_harmless_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/x",
        "--secret-env", "secret=NOT_SET_ANYWHERE")
    assert "FAILED" in cli("stores", "test", "web", code=1).stderr
    assert "NOT_SET_ANYWHERE" in cli_json("stores", "test", "web", code=1)["message"]
    monkeypatch.setenv("NOT_SET_ANYWHERE", WEBHOOK_SECRET)
    assert "no harmless read" in cli("stores", "test", "web").stdout


def test_no_output_ever_shows_a_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEB_HOOK_KEY", ENV_SECRET)
    outputs = []
    outputs.append(cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/x",
                       "--secret", f"secret={WEBHOOK_SECRET}"))
    outputs.append(cli("stores", "add", "envweb", "--cart", "webhook", "--url", "https://hooks.example/y",
                       "--secret-env", "secret=WEB_HOOK_KEY"))
    outputs.append(cli("stores", "add", "legacy", "--cart", "seti", "--url", "http://127.0.0.1:1/cart.php",
                       "--secret", "user=bob", "--secret", f"password={SETI_PASSWORD}"))
    outputs.append(cli("stores", "add", "woo", "--cart", "woocommerce", "--url", "https://shop.example",
                       "--secret", "key=ck_abcdefabcdef0123456789", "--secret", f"secret=cs_{SETI_PASSWORD}"))
    for name in ("web", "envweb", "legacy", "woo"):
        outputs.append(cli("stores", "show", name))
        outputs.append(cli("stores", "show", name, "--json"))
    outputs.append(cli("stores", "list"))
    outputs.append(cli("stores", "list", "--json"))
    outputs.append(cli("oss", "set", "web"))
    # Nothing listens on port 1: the test fails, and says so without the credentials.
    outputs.append(cli("stores", "test", "legacy", code=1))
    outputs.append(cli("stores", "test", "legacy", "--json", code=1))
    # Errors about secrets name the key, never the value.
    outputs.append(cli("stores", "add", "web", "--cart", "webhook", "--url", "https://hooks.example/x",
                       "--secret", f"secret={WEBHOOK_SECRET}", code=1))
    outputs.append(cli("stores", "add", "w2", "--cart", "webhook", "--url", "https://hooks.example/x",
                       "--secret", f"token={WEBHOOK_SECRET}", code=1))
    outputs.append(cli("stores", "add", "w3", "--cart", "webhook", "--url", "https://hooks.example/x",
                       "--secret", "secret=whsec_" + SETI_PASSWORD, code=1))
    outputs.append(cli("stores", "add", "w4", "--cart", "webhook", "--url", "https://hooks.example/x",
                       "--secret", WEBHOOK_SECRET, code=1))
    outputs.append(cli("stores", "add", "w5", "--cart", "seti", "--url", "ftp://x",
                       "--secret", "user=bob", "--secret", f"password={SETI_PASSWORD}", code=1))
    text = "\n".join(r.stdout + r.stderr for r in outputs)
    assert "••••••" in text
    for secret in (WEBHOOK_SECRET, ENV_SECRET, SETI_PASSWORD, "ck_abcdefabcdef0123456789"):
        body = secret.removeprefix("whsec_").rstrip("=")
        assert body[:16] not in text and body[-16:] not in text, secret


def test_masked_secrets_core():
    store = Store("s", "webhook", "https://x", {"a": {"value": "v1"}, "b": {"env": "B_VAR"}})
    assert store.masked_secrets() == {"a": MASK, "b": "env:B_VAR"}


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bad name!", "--cart", "webhook", "--url", "https://x.example"], "Store name"),
        (["web", "--cart", "etsy", "--url", "https://x.example"], "not a cart type"),
        (["web", "--cart", "webhook", "--url", "hooks.example/x", "--secret", f"secret={WEBHOOK_SECRET}"],
         "absolute http"),
        (["web", "--cart", "webhook", "--url", "http://hooks.example/x", "--secret", f"secret={WEBHOOK_SECRET}"],
         "plain http"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x"], "needs the secret"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret", "secret=not-whsec"],
         "whsec_"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret", "secret=whsec_c2hvcnQ="],
         "at least 24 bytes"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret", f"secret={WEBHOOK_SECRET}",
          "--option", "colour=blue"], "not an option of webhook"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret", f"secret={WEBHOOK_SECRET}",
          "--option", "timeout=0"], "positive number"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret", f"secret={WEBHOOK_SECRET}",
          "--secret-env", "secret=SOME_VAR"], "both by --secret and --secret-env"),
        (["web", "--cart", "webhook", "--url", "https://hooks.example/x", "--secret-env", "secret=1BAD-NAME"],
         "not an environment variable name"),
        (["woo", "--cart", "woocommerce", "--url", "https://shop.example", "--secret", "key=k"],
         "needs the secret(s)"),
        (["woo", "--cart", "woocommerce", "--url", "https://shop.example", "--secret", "key=k",
          "--secret", "secret=s", "--option", "tracking=pigeon"], "extension or note"),
    ],
)
def test_add_validation(args: list[str], fragment: str):
    cli("init")
    before = dump()
    assert fragment in error_of("stores", "add", *args)
    assert dump() == before


def test_plain_http_allowed_to_loopback_or_with_the_option():
    cli("stores", "add", "local", "--cart", "webhook", "--url", "http://localhost:8000/h",
        "--secret", f"secret={WEBHOOK_SECRET}")
    cli("stores", "add", "lan", "--cart", "webhook", "--url", "http://10.0.0.5/h",
        "--secret", f"secret={WEBHOOK_SECRET}", "--option", "allow_http=true")
    assert {s["name"] for s in cli_json("stores", "list")} == {"local", "lan"}


def test_store_names_are_unique():
    add_webhook_store()
    before = dump()
    assert "already exists" in error_of("stores", "add", "web", "--cart", "webhook", "--url",
                                        "https://x.example", "--secret", f"secret={OTHER_SECRET}")
    assert dump() == before


def test_unknown_store_show_and_remove():
    cli("init")
    assert "Unknown store 'nope'" in error_of("stores", "show", "nope")
    assert "Unknown store 'nope'" in error_of("stores", "remove", "nope", "--yes")


def test_core_url_rules():
    assert stores.is_loopback("127.0.0.1") and stores.is_loopback("::1") and stores.is_loopback("localhost")
    assert not stores.is_loopback("example.com")
    with pytest.raises(InputError):
        stores.check_url("http://example.com", allow_http=False)
    assert stores.check_url(" https://example.com ", allow_http=False) == "https://example.com"


# -- remove ------------------------------------------------------------------------------


def test_remove_store():
    add_webhook_store()
    assert "removed" in cli("stores", "remove", "web", "--yes").stdout
    assert cli_json("stores", "list") == []


def test_remove_asks_first_and_refuses_without_a_terminal():
    add_webhook_store()
    assert "add --yes" in error_of("stores", "remove", "web")
    assert len(cli_json("stores", "list")) == 1
    cli("stores", "remove", "web", "--yes")
    assert cli_json("stores", "list") == []


def test_remove_refuses_a_store_with_orders():
    add_webhook_store()
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "web")
    before = dump()
    assert "has 2 orders" in error_of("stores", "remove", "web", "--yes")
    assert dump() == before


def test_remove_refuses_an_oss_store_with_records_then_clears_the_oss_setting():
    cli("config", "set", "UseStatusUpdates", "true")
    add_webhook_store("status-page")
    add_none()
    cli("oss", "set", "status-page")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "phone")
    cli("fire", "order-approved", "2001")
    assert "has 1 record on the stack" in error_of("stores", "remove", "status-page", "--yes")
    record = cli_json("stack", "list")[0]["id"]
    cli("stack", "drop", record, "--yes")
    cli("stores", "remove", "status-page", "--yes")
    assert "internal only" in cli_json("stores", "show", "phone")["destination_text"]


# -- where records go --------------------------------------------------------------------


def test_show_tells_the_destination_cart_oss_or_internal_only():
    add_webhook_store("status-page")
    add_none()
    add_seti()
    assert cli_json("stores", "show", "legacy")["destination_text"] == "the cart itself (seti)"
    phone = cli_json("stores", "show", "phone")
    assert phone["destination"] is None
    assert "internal only" in phone["destination_text"]
    assert "internal only" in cli("stores", "show", "phone").stdout
    cli("oss", "set", "status-page")
    phone = cli_json("stores", "show", "phone")
    assert phone["destination"] == "status-page"
    assert "Order Status System" in phone["destination_text"]
    assert "Order Status System" in cli("stores", "show", "phone").stdout
    assert cli_json("stores", "show", "status-page")["is_oss"] is True
    # A cart that takes updates keeps its own destination.
    assert cli_json("stores", "show", "legacy")["destination"] == "legacy"
    cli("oss", "set", "--clear")
    assert cli_json("stores", "show", "phone")["destination"] is None


def test_add_says_where_records_go():
    add_webhook_store("status-page")
    cli("oss", "set", "status-page")
    out = cli("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example").stdout
    assert "Order Status System" in out


def test_oss_set_refuses_a_cart_that_cannot_take_updates():
    add_none()
    before = dump()
    assert "cannot receive updates" in error_of("oss", "set", "phone")
    assert dump() == before


def test_oss_set_only_takes_an_oss_or_webhook_store():
    # Records of other stores' orders must not be sent to some shop's own cart API.
    add_seti()
    before = dump()
    message = error_of("oss", "set", "legacy")
    assert "legacy" in message
    assert dump() == before


def test_oss_set_to_an_oss_store():
    cli("stores", "add", "oss", "--cart", "oss", "--url", "https://status.example/api/updates",
        "--secret", f"secret={OTHER_SECRET}")
    add_none()
    cli("oss", "set", "oss")
    assert cli_json("stores", "show", "phone")["destination"] == "oss"


def test_oss_set_needs_a_store_or_clear():
    add_webhook_store()
    assert "STORE, or --clear" in error_of("oss", "set")
    assert "STORE, or --clear" in error_of("oss", "set", "web", "--clear")
    assert "Unknown store" in error_of("oss", "set", "nope")


def test_stores_json_is_one_document():
    add_webhook_store()
    add_none()
    out = cli("stores", "list", "--json").stdout
    assert [s["name"] for s in json.loads(out)] == ["phone", "web"]


def test_stores_add_and_set_share_one_definition_of_secret_env_and_option():
    # One definition, so `--help` and the parsing of `add` and `set` cannot drift apart.
    from statusctl.cli import stores

    for command in (stores.add, stores.set_):
        assert command.__annotations__["secret_env"] == "SecretEnvOpt", command.__name__
        assert command.__annotations__["option"] == "OptionOpt", command.__name__
