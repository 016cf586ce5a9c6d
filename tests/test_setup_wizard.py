"""`statusctl setup`: the store setup wizard driven with scripted answers, its flag form, and its core.

The connection test runs against real carts on loopback: the seti demo cart
(`statusctl.democart`) and the WooCommerce fake of the contract suite.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.testing
from typer.testing import CliRunner

from statusctl.cli.main import app
from statusctl.core import wizard
from statusctl.core.events import all_events
from statusctl.democart import DemoCart
from statusctl.domain.errors import InputError, NotFound, StatusctlError
from statusctl.domain.events import default_events
from statusctl.storage.stores import get_store

from .carts.fake_woocommerce import KEY, SECRET, WooFake
from .carts.fakeserver import FakeServer
from .helpers import WEBHOOK_SECRET, cli, cli_json, count, dump, error_of, open_db

PASSWORD = "Pa55-never-SHOWN-anywhere"
WRONG = "wrong-Pa77-typed-first"  # no 8-letter piece of it is in the cart's message (those are masked)


@pytest.fixture
def cart() -> Iterator[DemoCart]:
    with DemoCart(user="seti-user", password=PASSWORD) as c:
        yield c


@pytest.fixture
def woo() -> Iterator[FakeServer]:
    with FakeServer(WooFake()) as server:
        yield server


def answers(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def seti_page1(cart: DemoCart, password: str = PASSWORD) -> list[str]:
    """Cart, name, URL, the two secrets typed hidden, the two options left at their defaults."""
    return ["seti", "shop", cart.url, "", cart.user, "", password, "", ""]


def wizard_run(text: str | io.BufferedIOBase, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["setup", "-i", *args], input=text, env={"COLUMNS": "160", "NO_COLOR": "1"})
    detail = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unexpected {result.exception!r}\n{detail}") from result.exception
    assert result.exit_code == code, detail
    assert "Traceback" not in result.output, detail
    return result.output


class CtrlCAfter(io.RawIOBase):
    """Standard input that gives these bytes, then behaves as if the operator pressed Ctrl-C."""

    def __init__(self, text: str) -> None:
        self.data = text.encode()
        self.pos = 0
        self.interrupted = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.pos >= len(self.data):
            self.interrupted = True
            raise KeyboardInterrupt
        n = min(len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def ctrl_c_after(*lines: str) -> tuple[io.BufferedReader, CtrlCAfter]:
    raw = CtrlCAfter(answers(*lines))
    return io.BufferedReader(raw), raw


# -- interactive, scripted ---------------------------------------------------------------


def test_happy_path_saves_store_settings_and_events(cart: DemoCart):
    cli("init")
    out = wizard_run(answers(
        "etsy",                       # not a cart type: said, and asked again
        *seti_page1(cart),
        "y",                          # UseStatusUpdates
        "7", "", "", "", "n",         # item-shipped: keep labels and fires, no notify cart
        "",                           # done with the grid
        "y",                          # save
    ))
    assert "The cart matrix" in out and "'etsy' is not a cart type" in out
    assert "Test OK: credentials accepted; the cart script reports 0 orders" in out
    assert "item-shipped *" in out  # the changed row is marked before saving
    assert "Summary: nothing is saved yet" in out
    assert "Saved store 'shop' (seti)" in out
    assert PASSWORD not in out and cart.user not in out  # typed hidden, masked in the summary
    assert "••••••" in out
    store = cli_json("stores", "show", "shop")
    assert store["cart"] == "seti" and store["url"] == cart.url
    assert store["secrets"] == {"password": "••••••", "user": "••••••"}
    db = open_db()
    assert get_store(db, "shop").resolve_secrets() == {"user": cart.user, "password": PASSWORD}
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == "true"
    grid = {e["event"]: e for e in cli_json("events", "list")}
    assert grid["item-shipped"]["notify_cart"] is False and grid["item-shipped"]["fires"] is True
    assert grid["item-shipped"]["item_label"] == "Item Shipped"
    assert grid["order-shipped"]["notify_cart"] is True  # untouched


def test_failed_connection_test_is_said_plainly_and_asked_again(cart: DemoCart):
    cli("init")
    out = wizard_run(answers(
        *seti_page1(cart, WRONG),
        "e",                                      # edit the settings
        "", "", "", "", "", PASSWORD, "", "",     # Enter keeps name, URL, user; the password typed again
        "y", "", "y",
    ))
    assert "Test FAILED: The cart script refused the order count: Invalid username, password, or store code" in out
    assert out.count("Test OK") == 1
    assert WRONG not in out and PASSWORD not in out
    assert get_store(open_db(), "shop").resolve_secrets()["password"] == PASSWORD


def test_failed_connection_test_then_quit_saves_nothing(cart: DemoCart):
    cli("init")
    before = dump()
    out = wizard_run(answers(*seti_page1(cart, WRONG), "t", "q"), code=1)
    assert out.count("Test FAILED") == 2  # tested again with the same settings, then quit
    assert "Nothing was saved." in out
    assert dump() == before


@pytest.mark.parametrize("stop_after", [2, 9, 11])
def test_ctrl_c_half_way_leaves_the_database_as_it_was(cart: DemoCart, stop_after: int,
                                                       monkeypatch: pytest.MonkeyPatch):
    # 2: at the URL; 9: after the test, at UseStatusUpdates; 11: in the events grid, after an edit began.
    cli("init")
    before = dump()
    script = [*seti_page1(cart), "y", "7", "-"][:stop_after]
    # Typer's runner only takes text as stdin: let it take our stream that ends in Ctrl-C.
    monkeypatch.setattr(typer.testing, "make_input_stream", lambda stream, charset: stream)
    stream, raw = ctrl_c_after(*script)
    result = CliRunner().invoke(app, ["setup", "-i"], input=stream, env={"NO_COLOR": "1"})  # type: ignore[arg-type]
    assert raw.interrupted
    assert result.exit_code == 130, result.output
    assert "Setup cancelled; nothing was saved." in result.stderr
    assert "Traceback" not in result.output
    assert dump() == before


def test_declining_the_summary_saves_nothing(cart: DemoCart):
    cli("init")
    before = dump()
    out = wizard_run(answers(*seti_page1(cart), "y", "d", "", "n"), code=1)
    assert "Default status events loaded" in out and "Nothing was saved." in out
    assert dump() == before


def test_a_cart_without_updates_can_go_to_the_oss(db_file: Path):
    cli("stores", "add", "status", "--cart", "oss", "--url", "https://status.example/api/updates",
        "--secret", f"secret={WEBHOOK_SECRET}")
    out = wizard_run(answers(
        "10",                        # none, by its number in the matrix
        "phone", "https://phone-orders.example",
        "n",                         # keep UseStatusUpdates off
        "",                          # send to an OSS? default yes: the only candidate is taken
        "", "y",
    ))
    assert "no harmless read to test with" in out
    assert "the Order Status System (store 'status')" in out
    assert cli_json("stores", "show", "phone")["destination"] == "status"
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == "false"
    assert "UseStatusUpdates is off" in out


def test_an_environment_variable_can_hold_a_secret(woo: FakeServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WC_KEY", KEY)
    monkeypatch.setenv("WC_SECRET", SECRET)
    out = wizard_run(answers(
        "woocommerce", "", woo.base_url, "WC_KEY", "WC_SECRET", "pigeon", "note", "", "", "y",
    ))
    assert "tracking='pigeon' must be extension or note" in out  # a bad option value is asked again
    assert "Test OK: WooCommerce REST wc/v3: 1 order visible" in out
    store = cli_json("stores", "show", "woocommerce")
    assert store["secrets"] == {"key": "env:WC_KEY", "secret": "env:WC_SECRET"}
    assert store["options"] == {"tracking": "note"}
    assert KEY not in out and SECRET not in out


# -- the flag form (scripts) -------------------------------------------------------------


def test_flags_and_yes_run_without_a_question(woo: FakeServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WC_KEY", KEY)
    monkeypatch.setenv("WC_SECRET", SECRET)
    result = cli("setup", "--cart", "woocommerce", "--url", woo.base_url, "--secret-env", "key=WC_KEY",
                 "--secret-env", "secret=WC_SECRET", "--event", "item-shipped.notify=no",
                 "--event", "order-approved.order=", "--yes")
    assert "Test OK" in result.stdout and "Saved store 'woocommerce'" in result.stdout
    assert "[Y/n]" not in result.stdout and "Change an event" not in result.stdout  # nothing was asked
    store = cli_json("stores", "show", "woocommerce")
    assert store["secrets"] == {"key": "env:WC_KEY", "secret": "env:WC_SECRET"}
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == "true"
    grid = {e["event"]: e for e in cli_json("events", "list")}
    assert grid["item-shipped"]["notify_cart"] is False
    assert grid["order-approved"]["order_label"] is None
    paths = [r.path for r in woo.requests]
    assert "/wp-json/wc/v3/orders" in paths  # the test read the cart with the unsaved settings


def test_flags_with_a_failing_test_save_nothing(woo: FakeServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WC_KEY", KEY)
    monkeypatch.setenv("WC_SECRET", "cs_not_the_right_secret_at_all")
    cli("init")
    before = dump()
    message = error_of("setup", "--cart", "woocommerce", "--url", woo.base_url, "--secret-env", "key=WC_KEY",
                       "--secret-env", "secret=WC_SECRET", "--use-status-updates", "--yes")
    assert "The connection test failed" in message and "credentials refused" in message
    assert "nothing was saved" in message and "cs_not_the_right" not in message
    assert dump() == before


def test_flags_can_skip_the_test_and_set_the_oss(db_file: Path):
    cli("stores", "add", "status", "--cart", "oss", "--url", "https://status.example/api/updates",
        "--secret", f"secret={WEBHOOK_SECRET}")
    cli("setup", "--name", "phone", "--cart", "none", "--url", "https://phone.example", "--oss", "status",
        "--no-use-status-updates", "--no-test", "--default-events", "--yes")
    assert cli_json("stores", "show", "phone")["destination"] == "status"
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == "false"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "has no terminal to ask its questions on"),
        (["--cart", "woocommerce", "--url", "https://shop.example"], "has no terminal"),
        (["--cart", "woocommerce", "--yes"], "needs --url"),
        (["--url", "https://shop.example", "--yes"], "needs --cart"),
        (["--cart", "woocommerce", "--url", "https://shop.example", "--secret-env", "key=K", "--yes"],
         "woocommerce secret(s) secret"),
        (["--cart", "etsy", "--url", "https://x.example", "--yes"], "not a cart type"),
        (["--cart", "none", "--url", "https://x.example", "--oss", "nope", "--yes"], "not an oss or webhook store"),
        (["--cart", "none", "--url", "https://x.example", "--event", "item-shipped.colour=red", "--yes"],
         "EVENT.FIELD=VALUE"),
        (["--cart", "none", "--url", "https://x.example", "--event", "item-shipped.item=Cancelled", "--yes"],
         "scope order"),
        (["--cart", "none", "--url", "https://x.example", "--oss", "a", "--no-oss", "--yes"], "not both"),
    ],
)
def test_without_a_terminal_or_with_bad_flags_it_refuses_in_one_sentence(args: list[str], fragment: str):
    cli("init")
    before = dump()
    assert fragment in error_of("setup", *args)
    assert dump() == before


@pytest.mark.no_database
def test_refusing_without_a_terminal_does_not_even_create_the_database(db_file: Path):
    error_of("setup")
    assert not db_file.exists()


# -- the core ------------------------------------------------------------------------------


def _plan(db_path: Path, **kw: object) -> wizard.SetupPlan:
    from statusctl.core.stores import build_store

    store = build_store("web", "webhook", "https://hooks.example/x", [f"secret={WEBHOOK_SECRET}"], [], [])
    return wizard.SetupPlan(store, **kw)  # type: ignore[arg-type]


def test_save_is_one_transaction(db_file: Path):
    db = open_db()
    before = dump()
    events = wizard.read_state(db).events
    changed = [wizard.change_event([], events["order-approved"], fires=False)]
    with pytest.raises(NotFound):
        wizard.save(db, _plan(db_file, use_status_updates=True, change_oss=True, oss="nope", events=changed))
    assert dump() == before  # neither the store, the setting nor the event were written
    saved = wizard.save(db, _plan(db_file, use_status_updates=True, change_oss=True, oss="web", events=changed))
    assert saved.name == "web"
    state = wizard.read_state(db)
    assert state.use_status_updates and state.oss == "web" and not state.events["order-approved"].fires
    with pytest.raises(InputError, match="already exists"):
        wizard.save(db, _plan(db_file, use_status_updates=False))
    assert wizard.read_state(db).use_status_updates
    assert count("stores") == 1


def test_core_answer_checks(db_file: Path):
    db = open_db()
    state = wizard.read_state(db)
    assert wizard.check_cart("1") == "seti" and wizard.check_cart(" WooCommerce ") == "woocommerce"
    with pytest.raises(InputError):
        wizard.check_cart("11")
    assert wizard.suggest_name({"seti", "seti-2"}, "seti") == "seti-3"
    assert wizard.suggest_name(set(), "oss") == "oss"
    with pytest.raises(InputError):
        wizard.check_new_name(state, "has space")
    with pytest.raises(InputError):
        wizard.check_env_name("1BAD")
    labels = state.labels
    grid = wizard.apply_event_changes(labels, state.events, [
        "item-shipped.notify=no", "order-shipped.order_label=cancelled", "order-imported.fires=off",
        "item-returned.item=-",
    ])
    assert grid["order-shipped"].order_label == "Cancelled"  # the label's own spelling
    assert grid["item-returned"].item_label is None
    assert [e.name for e in wizard.changed_events(state.events, grid)] == [
        "order-imported", "item-shipped", "order-shipped", "item-returned"]
    assert state.events == {e.name: e for e in all_events(db)}  # the state was not changed in place
    for bad in ("item-shipped.notify=maybe", "no-such-event.fires=yes", "item-shipped=yes",
                "item-shipped.order=No Such Label"):
        with pytest.raises(StatusctlError):
            wizard.apply_event_changes(labels, state.events, [bad])
    assert wizard.changed_events(state.events, default_events()) == []


def test_setup_help_lists_a_flag_for_every_question():
    out = cli("setup", "--help").stdout
    for flag in ("--name", "--cart", "--url", "--secret-env", "--option", "--no-test", "--use-status-updates",
                 "--oss", "--no-oss", "--default-events", "--event", "--yes", "--interactive"):
        assert flag in out, flag


# -- editing an existing store; every flag checked first ---------------------------------


def woo_flags(woo: FakeServer, *extra: str) -> list[str]:
    return ["setup", "--cart", "woocommerce", "--url", woo.base_url, "--secret", f"key={KEY}", *extra, "--yes"]


def test_rerunning_setup_with_the_same_cart_and_url_edits_that_store(woo: FakeServer):
    cli(*woo_flags(woo, "--secret", "secret=cs_wrong_one_first", "--no-test"))
    cli("orders", "import", Path(__file__).parent.parent / "examples" / "orders.csv", "--store", "woocommerce")
    out = cli(*woo_flags(woo, "--secret", f"secret={SECRET}")).stdout
    assert "Test OK" in out and "Changed store 'woocommerce' (woocommerce)" in out
    assert "woocommerce (existing: its settings change)" in out
    out = cli(*woo_flags(woo, "--secret", f"secret={SECRET}", "--option", "tracking=note")).stdout
    assert [s["name"] for s in cli_json("stores", "list")] == ["woocommerce"]  # no woocommerce-2, -3
    assert get_store(open_db(), "woocommerce").resolve_secrets()["secret"] == SECRET
    assert cli_json("stores", "show", "woocommerce")["options"] == {"tracking": "note"}
    assert len(cli_json("orders", "list")) == 6
    # Another URL of the same cart type is another store.
    cli("setup", "--cart", "woocommerce", "--url", "https://other.example", "--secret", f"key={KEY}",
        "--secret", f"secret={SECRET}", "--no-test", "--yes")
    assert [s["name"] for s in cli_json("stores", "list")] == ["woocommerce", "woocommerce-2"]


def test_setup_names_an_existing_store_to_edit_it_and_a_failed_test_changes_nothing(woo: FakeServer):
    cli(*woo_flags(woo, "--name", "shop", "--secret", f"secret={SECRET}"))
    before = dump()
    message = error_of(*woo_flags(woo, "--name", "shop", "--secret", "secret=cs_not_right_at_all"))
    assert "The connection test failed" in message and dump() == before
    assert "already exists with cart type woocommerce" in error_of(
        "setup", "--name", "shop", "--cart", "none", "--url", "https://x.example", "--yes")
    assert dump() == before


def test_the_wizard_edits_an_existing_store_when_its_name_is_typed(cart: DemoCart):
    cli("stores", "add", "shop", "--cart", "seti", "--url", cart.url, "--secret", f"user={cart.user}",
        "--secret", f"password={WRONG}")
    out = wizard_run(answers(
        "seti", "shop",       # the existing store's name: edit it
        "",                   # URL: Enter keeps it
        "", "",               # user: no variable, Enter keeps the one stored
        "", PASSWORD,         # password: typed anew
        "", "",               # options kept
        "y", "", "y",
    ))
    assert "Store 'shop' exists (seti" in out and "Changed store 'shop'" in out
    assert "Test OK" in out and PASSWORD not in out and WRONG not in out
    assert [s["name"] for s in cli_json("stores", "list")] == ["shop"]
    assert get_store(open_db(), "shop").resolve_secrets() == {"user": cart.user, "password": PASSWORD}


def test_the_wizard_offers_the_store_with_the_same_cart_and_url_when_the_suggested_name_is_kept(woo: FakeServer):
    cli(*woo_flags(woo, "--secret", f"secret={SECRET}", "--no-test"))
    before = {s["name"]: s for s in cli_json("stores", "list")}
    out = wizard_run(answers(
        "woocommerce", "",    # Enter at "Store name [woocommerce-2]"
        woo.base_url,         # the existing store's URL
        "",                   # edit it instead (the default)
        "",                   # URL: Enter keeps it
        "", "", "", "",       # key and secret: Enter keeps the ones stored
        "note",               # tracking option changed
        "y", "", "y",
    ), "--no-test")
    assert "Store name [woocommerce-2]" in out and "Store 'woocommerce' has this cart type and URL" in out
    assert "woocommerce (existing: its settings change)" in out and "woocommerce-2" not in out.split("URL")[-1]
    assert "Changed store 'woocommerce'" in out
    assert [s["name"] for s in cli_json("stores", "list")] == list(before) == ["woocommerce"]
    assert cli_json("stores", "show", "woocommerce")["options"] == {"tracking": "note"}
    assert get_store(open_db(), "woocommerce").resolve_secrets() == {"key": KEY, "secret": SECRET}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--oss", "nope"], "not an oss or webhook store"),
        (["--event", "item-shipped.colour=red"], "EVENT.FIELD=VALUE"),
        (["--event", "nope.fires=yes"], "nope"),
        (["--event", "item-shipped.fires=perhaps"], "yes or no"),
    ],
)
def test_every_flag_is_checked_before_the_cart_is_contacted(woo: FakeServer, extra: list[str], fragment: str):
    cli("init")
    before = dump()
    assert fragment in error_of(*woo_flags(woo, "--secret", f"secret={SECRET}", *extra))
    assert woo.requests == [] and dump() == before
