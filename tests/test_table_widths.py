"""Every table at 80 and 60 columns: nothing a person copies is cut (issue 13, point 16).

The reference is the same command at 300 columns, where nothing wraps: at a
narrow width every word shown (a store name, a URL, an id, a date, a label)
must be one of the words of the wide output, whole, and no line may be wider
than the terminal. A word cut in two (`woocommerc` + `e`) is not a word of the
wide output, so it fails.
"""

from __future__ import annotations

import re

import pytest
from rich.cells import cell_len

from .helpers import EXAMPLES, cli, cli_json

COMMANDS = [
    ["stack", "list"], ["stack", "history"], ["stack", "status"], ["orders", "list"], ["orders", "show", "1001"],
    ["orders", "show", "2001"], ["stores", "list"], ["stores", "show", "woocommerce"], ["stores", "show", "destination"],
    ["labels", "list"], ["events", "list"], ["config", "list"], ["carts"],
]
RULES = set("━─┏┓┗┛┡┩└┘┳┻╇┴┬╋┼┃│╷╵")
AGE = re.compile(r"^\d+[smhd](\d\d[smh])?$")  # ages grow between two runs of a command
NOTE = re.compile(r"\((?:[^()])*?left out to fit \d+ columns; --json shows\s+everything\.\)")


@pytest.fixture
def shop() -> None:
    cli("init")
    cli("config", "set", "UseStatusUpdates", "true")
    # Nothing listens on these ports: the records stay, retrying, with an error to show.
    cli("stores", "add", "woocommerce", "--cart", "woocommerce", "--url", "http://127.0.0.1:18081",
        "--secret", "key=ck_0123456789abcdef0123", "--secret", "secret=cs_0123456789abcdef0123")
    cli("stores", "add", "destination", "--cart", "webhook", "--url", "http://127.0.0.1:9/hooks/status",
        "--secret", "secret=whsec_c3RhdHVzY3RsLXRlc3Qtd2ViaG9vay1rZXktMDEyMzQ1")
    cli("orders", "import", EXAMPLES / "orders.csv", "--store", "woocommerce")
    cli("orders", "import", EXAMPLES / "orders.json", "--store", "destination")
    cli("ship", "1001", "--tracking", "1Z999AA10123456784", "--carrier", "UPS")
    cli("ship", "2001", "--tracking", "1Z999AA10123456785", "--carrier", "UPS")
    cli("stack", "run", code=3)


def words(text: str) -> list[str]:
    return [w for line in text.splitlines() for cell in re.split("[│┃]", line) for w in cell.split()
            if not set(w) <= RULES]


@pytest.mark.parametrize("width", [80, 60])
def test_no_table_cuts_a_word(shop: None, width: int):
    for args in COMMANDS:
        wide = cli(*args, env={"COLUMNS": "300"}).stdout
        known = set(words(wide))
        narrow = cli(*args, env={"COLUMNS": str(width)}).stdout
        for line in narrow.splitlines():
            assert cell_len(line) <= width, f"{args} at {width}: a line of {cell_len(line)}:\n{narrow}"
        for word in words(NOTE.sub("", narrow)):
            assert word in known or AGE.match(word), f"{args} at {width}: {word!r} is cut or new:\n{narrow}"


def test_what_is_copied_stays_on_one_line_at_80_columns(shop: None):
    env = {"COLUMNS": "80"}
    stores = cli("stores", "list", env=env).stdout
    assert "http://127.0.0.1:18081" in stores and "http://127.0.0.1:9/hooks/status" in stores
    assert "(secrets left out to fit 80 columns; --json shows everything.)" in stores
    listed = cli("stack", "list", env=env).stdout
    ids = [r["id"][:11] for r in cli_json("stack", "list")]
    assert ids and all(i in listed for i in ids)
    history = cli("stack", "history", env=env).stdout
    assert re.search(r"│ \d\d-\d\d \d\d:\d\d:\d\d │", history), "a time on one line, in the table"
    orders = cli("orders", "list", env=env).stdout
    assert "│ 2026-11-24 │" in orders and "Order Received" in orders


@pytest.mark.parametrize("width", [80, 60])
def test_stack_top_fits_by_leaving_columns_out(shop: None, width: int):
    frame = cli("stack", "top", "--once", env={"COLUMNS": str(width)}).stdout
    lines = frame.splitlines()
    assert max(cell_len(line) for line in lines) <= width, [line for line in lines if cell_len(line) > width]
    stack_head = next(line for line in lines if line.lstrip().startswith("store ") and "queued" in line)
    errors_head = next(line for line in lines if "reason" in line)
    for head in (stack_head, errors_head):
        assert "…" not in head, f"a header cut at {width}:\n{frame}"
    assert {"store", "queued", "failed"} <= set(stack_head.split())
    assert {"store", "order", "reason"} <= set(errors_head.split())  # the reason is what matters most
    rows = [line for line in lines if {"woocommerce", "destination"} & set(line.split())]
    assert len(rows) == 4, frame  # each store in the counts and in the last errors, its name whole
    chart = [line for line in lines if "└" in line]
    assert chart and cell_len(chart[0]) <= width
