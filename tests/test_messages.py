"""What a new user reads: usage lines, singular and plural, values said as the file wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import EXAMPLES, cli, error_of, setup_shop, write

USAGE = [
    (["fire"], "statusctl fire [OPTIONS] EVENT ORDER"),
    (["ship"], "statusctl ship [OPTIONS] ORDER"),
    (["apply"], "statusctl apply [OPTIONS] FILE"),
    (["events", "set"], "statusctl events set [OPTIONS] EVENT"),
    (["labels", "add"], "statusctl labels add [OPTIONS] NAME"),
    (["config", "set"], "statusctl config set [OPTIONS] NAME VALUE"),
    (["stores", "set"], "statusctl stores set [OPTIONS] NAME"),
    (["stack", "retry"], "statusctl stack retry [OPTIONS] [IDS]..."),
]


@pytest.mark.parametrize(("command", "usage"), USAGE)
def test_usage_lines_name_the_arguments_in_capitals_without_braces(command: list[str], usage: str):
    out = cli(*command, "--help").stdout
    assert f"Usage: {usage}\n" in out
    assert "{" not in out.splitlines()[0]


def test_a_negative_config_value_is_checked_as_a_value_not_taken_for_an_option():
    cli("init")
    message = error_of("config", "set", "StackMaxAttempts", "-1")  # exit 1, not Click's exit 2
    assert "Bad value '-1' for StackMaxAttempts" in message
    assert "No such option" not in message


@pytest.mark.parametrize(("value", "said"), [(True, "not true"), (False, "not false"), (2.5, "not 2.5"),
                                             ([1], "not [1]")])
def test_a_json_quantity_is_said_as_json_writes_it(tmp_path: Path, value: object, said: str):
    setup_shop()
    row = {"action": "ship", "order": "1003", "sku": "POSTER", "quantity": value}
    message = error_of("apply", write(tmp_path / "a.jsonl", json.dumps(row) + "\n"))
    assert f"field 'quantity': must be a whole number of at least 1, {said}." in message
    assert "True" not in message and "False" not in message


def test_one_row_one_order_one_record_in_the_singular(tmp_path: Path):
    setup_shop()
    f = write(tmp_path / "a.csv", "action,event,order\nfire,order-approved,1002\n")
    assert "Applied 1 row to 1 order: 1 label changed, 1 record queued." in cli("apply", f).stdout
    more = write(tmp_path / "b.csv", "action,event,order\nfire,order-approved,1002\nfire,order-approved,1004\n")
    assert "Applied 2 rows to 2 orders: 1 label changed, 1 record queued." in cli("apply", more).stdout


def test_import_of_one_order_is_singular(tmp_path: Path):
    cli("init")
    cli("stores", "add", "phone", "--cart", "none", "--url", "https://phone.example")
    head = EXAMPLES.joinpath("orders.csv").read_text().splitlines()[0]
    f = write(tmp_path / "o.csv", head + "\n3001,2026-12-01,Ann,ann@example.com,1,SKU,Thing,1,,\n")
    assert "Imported 1 order (1 item) into store 'phone'." in cli("orders", "import", f, "--store", "phone").stdout


def test_retrying_a_record_being_sent_says_why_nothing_happens():
    import time

    from statusctl.storage import stack

    from .helpers import open_db

    setup_shop()
    cli("fire", "order-approved", "1002")
    db = open_db()
    try:
        with db.tx() as conn:
            (claimed,) = stack.claim(conn, "controller-A", 10, 60.0, now=time.time())
    finally:
        db.close()
    message = error_of("stack", "retry", claimed.uid)
    assert f"Record {claimed.uid} is being sent right now; retry it when that send is over" in message
