"""A hostile cart and hostile imported text never drive the operator's terminal (issue 11, point 1).

A seti cart script on a real local HTTP server answers every request with
escape sequences (window title, clipboard, "erase the line, go up, print OK",
hidden text), C1 controls and bidi overrides; the imported order carries them
in its number, customer name, SKU and item name. Every human-readable output
that shows them must show them escaped, on stdout and stderr; `--json` keeps
the exact text.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from statusctl.cli.top import render
from statusctl.core.dashboard import snapshot
from statusctl.domain.display import json_safe, printable
from statusctl.domain.errors import shown

from .carts.fakeserver import Answer, FakeServer, Request
from .helpers import cli, cli_json, open_db, updates_on, write

# Each one a known attack: retitle the window, write the clipboard, rewrite the line above
# with a fake "OK", hide what follows, CSI and OSC as C1 bytes, bidi overrides and isolates.
ATTACKS = [
    "\x1b]0;owned\x07",
    "\x1b]52;c;ZXZpbA==\x07",
    "\x1b[2K\x1b[1AOK: delivered",
    "\x1b[8mhidden",
    "\x9b2J\x9d0;c1-title\x9c",
    "abc\u202edef",
    "\u2066iso\u2069\u200f\u061c",
    "bell\x07back\x08space\x7fdel",
]
HOSTILE = " ".join(ATTACKS)
# What must never reach a terminal raw: every C0 control but the newline, DEL, C1, and the
# bidi controls. Written out here, not taken from statusctl, so the test checks the code.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ORDER = "N\x1b[8m1\u202e"
SKU = "SKU-\x1b]0;x\x07"


def assert_clean(text: str, where: str) -> None:
    found = RAW.search(text)
    assert found is None, f"{where}: raw {found.group()!r} reaches the terminal:\n{text}"


class HostileSeti:
    """A seti cart script that refuses everything with the attacks as its reason."""

    def __call__(self, req: Request) -> Answer:
        return Answer(200, f"SETIError: {HOSTILE}")


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[FakeServer]:
    with FakeServer(HostileSeti()) as server:
        cli("init")
        updates_on()
        cli("stores", "add", "legacy", "--cart", "seti", "--url", server.base_url + "/cart.php",
            "--secret", "user=bob", "--secret", "password=pw-123456")
        orders = [{
            "order_number": ORDER, "order_date": "2026-11-24", "customer_name": f"Eve {HOSTILE}",
            "customer_email": "eve@example.com", "ship_postal_code": "02139",
            "items": [{"sku": SKU, "name": f"Mug {HOSTILE}", "quantity": 1}],
        }]
        cli("orders", "import", write(tmp_path / "orders.json", json.dumps(orders)), "--store", "legacy")
        cli("fire", "order-approved", ORDER)
        cli("stack", "run", code=3)  # the cart refuses: the record failed with the hostile reason
        yield server


TEXT_COMMANDS: list[tuple[list[str], int]] = [
    (["stack", "list"], 0),
    (["stack", "list", "--failed"], 0),
    (["stack", "list", "--order", ORDER], 0),
    (["stack", "history"], 0),
    (["stack", "history", "--order", ORDER], 0),
    (["stack", "status"], 0),
    (["stack", "top", "--once"], 0),
    (["stores", "test", "legacy"], 1),
    (["orders", "list"], 0),
    (["orders", "show", ORDER], 0),
    (["ship", ORDER, "--tracking", "1Z\x1b[2K", "--carrier", "UPS\u202e"], 0),
    # Errors quote what they name.
    (["orders", "show", "X\x1b]0;t\x07\u202e"], 1),
    (["stack", "list", "--store", "s\x1b[2J"], 1),
    (["fire", "order-approved", "\x1b]52;c;eA==\x07"], 1),
]


@pytest.mark.parametrize("width", ["300", "80"])
def test_no_text_output_carries_a_raw_control_or_bidi_character(hostile: FakeServer, width: str):
    for args, code in TEXT_COMMANDS:
        r = cli(*args, code=code, env={"COLUMNS": width})
        assert_clean(r.stdout, f"stdout of {args}")
        assert_clean(r.stderr, f"stderr of {args}")
    listed = cli("stack", "list", env={"COLUMNS": "300"}).stdout
    # Shown, escaped, where a person can read what the cart sent.
    for attack in ("\\x1b]0;owned\\x07", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b[2K\\x1b[1AOK: delivered",
                   "\\x1b[8mhidden", "\\x9b2J", "abc\\u202edef", "\\u2066iso\\u2069"):
        assert attack in listed, attack
    assert "N\\x1b[8m1\\u202e" in listed
    failed = cli("stores", "test", "legacy", code=1)
    assert failed.stdout == "" and "\\x1b]52;c;" in failed.stderr
    shown_order = cli("orders", "show", ORDER, env={"COLUMNS": "300"}).stdout
    assert "Eve \\x1b]0;owned\\x07" in shown_order and "SKU-\\x1b]0;x\\x07" in shown_order


def test_json_keeps_the_exact_text(hostile: FakeServer):
    record = cli_json("stack", "list")[0]
    assert record["order"] == ORDER
    assert HOSTILE in record["last_error"]
    assert record["last_answer"] == f"SETIError: {HOSTILE}"
    attempt = cli_json("stack", "history")[-1]
    assert attempt["order_number"] == ORDER and HOSTILE in attempt["reason"]
    order = cli_json("orders", "show", ORDER)
    assert order["customer_name"] == f"Eve {HOSTILE}"
    assert (order["items"][0]["sku"], order["items"][0]["name"]) == (SKU, f"Mug {HOSTILE}")
    assert HOSTILE in cli_json("stores", "test", "legacy", code=1)["message"]
    assert cli_json("orders", "list")[0]["customer_name"] == f"Eve {HOSTILE}"
    # The exact data, with C1 and bidi written as \\uXXXX: a --json piped to a terminal is safe too.
    raw = cli("orders", "show", ORDER, "--json").stdout
    assert_clean(raw, "orders show --json")


def test_stack_top_frame_shows_the_reason_escaped(hostile: FakeServer, db_file: Path):
    db = open_db(db_file)
    try:
        frame = render(snapshot(db, window=300.0, bucket=5.0), f"db\x1b]0;t\x07{db_file}", interval=None)
    finally:
        db.close()
    # A plain Rich console (not statusctl's): the frame itself carries only escaped text.
    out = Console(width=200, record=True, force_terminal=False, color_system=None)
    out.print(frame)
    text = out.export_text()
    assert_clean(text, "stack top frame")
    assert "N\\x1b[8m1\\u202e" in text and "\\x1b]0;owned" in text and "db\\x1b]0;t\\x07" in text


@pytest.mark.parametrize("attack", ATTACKS)
def test_printable_and_shown_escape_every_attack(attack: str):
    for text in (printable(attack), shown(attack), printable(attack, lines=True)):
        assert_clean(text, repr(attack))
    assert printable("a\nb") == "a\\nb" and printable("a\nb", lines=True) == "a\nb"
    assert printable("Zoë \U0001f469\u200d\U0001f467") == "Zoë \U0001f469\u200d\U0001f467"  # ZWJ emoji stay whole
    document = json.dumps({"v": attack}, ensure_ascii=False)
    assert json.loads(json_safe(document)) == {"v": attack}
    assert_clean(json_safe(document), "json")


def test_shown_quotes_as_python_does_for_plain_text():
    for text in ("plain", "it's", 'say "hi"', "back\\slash", "x" * 70):
        assert shown(text) == (repr(text) if len(text) <= 60 else repr(text[:60]) + "…")
    assert shown("both ' and \"") == "'both ' and \"'"  # never a backslashed quote (Python writes \')


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")
def test_a_real_terminal_keeps_its_title_clipboard_and_lines(hostile: FakeServer, db_file: Path, tmp_path: Path):
    from .test_tmux import Tmux, statusctl

    conf = write(tmp_path / "tmux.conf", "set -g set-clipboard on\nset -g allow-rename on\n")
    commands = {
        "list": " ; ".join([statusctl(db_file, "stack", "list"), statusctl(db_file, "stack", "history"),
                            statusctl(db_file, "stores", "test", "legacy")]),
        "top": statusctl(db_file, "stack", "top", "--interval", "0.3", env={"NO_COLOR": "1"}),
    }
    for name, command in commands.items():
        term = Tmux(tmp_path / f"{name}.sock", width=120, height=50)
        term.base[-1] = str(conf)  # `-f CONF`: an OSC 52 would land in a paste buffer, an OSC 0 in the title
        try:
            term.start(command)
            if name == "list":
                screen = term.wait("EXIT=")
                assert "\\x1b]0;owned\\x07" in screen and "\\x1b]52;c;ZXZpbA==\\x07" in screen
                # The fake "OK: delivered" stays on the line of the escaped sequence meant to erase it.
                assert all("\\x1b[2K\\x1b[1AOK" in line for line in screen.splitlines() if "OK: delivered" in line)
            else:
                term.wait(lambda s: "Last errors" in s and "\\x1b]0;own" in s, history=False)
            title = term.tmux("display-message", "-p", "-t", "t", "#{pane_title}")
            assert "owned" not in title and "c1-title" not in title, title
            assert term.tmux("list-buffers") == "", "a cart's answer wrote the clipboard"
        finally:
            term.stop()
