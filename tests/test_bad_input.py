"""The bad-input corpus (tests/data/): each file exits 1, names line and field, and changes nothing.

Every broken file starts with a good row (a new order 3001, or `fire order-approved 1004`),
so an import or apply that wrote rows before meeting the bad one would show in the dump.
"""

from __future__ import annotations

import pytest

from statusctl.core.orders import parse_orders
from statusctl.domain.errors import InputError

from .helpers import DATA, ROOT, cli, dump, setup_shop

# file -> (line, what the message must name: the field, or the column / place for structural errors)
ORDER_FILES: dict[str, tuple[int, str]] = {
    "missing_column.csv": (1, "missing column 'quantity'"),
    "unknown_column.csv": (1, "unknown column 'colour'"),
    "quantity_zero.csv": (3, "field 'quantity'"),
    "quantity_negative.csv": (3, "field 'quantity'"),
    "quantity_fraction.csv": (3, "field 'quantity'"),
    "quantity_text.csv": (3, "field 'quantity'"),
    "empty_sku.csv": (3, "field 'sku'"),
    "duplicate_line.csv": (4, "field 'sku'"),
    "conflicting_fields.csv": (4, "field 'customer_name'"),
    "bad_date.csv": (3, "field 'order_date'"),
    "already_present.csv": (3, "field 'order_number'"),
    "wrong_field_count.csv": (3, "has 7 fields, the header has 8"),
    "nul_byte.csv": (3, "field 'customer_name'"),
    "latin1.csv": (3, "not valid UTF-8"),
    "not_a_list.json": (1, "expected a JSON list"),
    "item_not_object.json": (5, "(order 2, item 1)"),
    "missing_items.json": (5, "field 'items'"),
    "json_bad_quantity.json": (5, "field 'quantity'"),
    "truncated.json": (5, "invalid JSON (Unterminated string"),
}

APPLY_FILES: dict[str, tuple[int, str]] = {
    "unknown_action.csv": (3, "field 'action'"),
    "unknown_event.csv": (3, "field 'event'"),
    "event_on_ship.csv": (3, "field 'event'"),
    "unknown_order.csv": (3, "field 'order'"),
    "unknown_sku.csv": (3, "field 'sku'"),
    "quantity_without_sku.csv": (3, "field 'quantity'"),
    "tracking_on_cancel.csv": (3, "field 'tracking'"),
    "carrier_without_tracking.csv": (3, "field 'carrier'"),
    "ship_more_than_left.csv": (4, "field 'quantity'"),
    "bad_json_line.jsonl": (2, "invalid JSON"),
    "unknown_field.jsonl": (2, "unknown field 'evnt'"),
}


@pytest.fixture(autouse=True)
def shop() -> None:
    setup_shop()


def failing(*args: object) -> str:
    """Run a command that must exit 1 with one line on stderr and nothing on stdout; return stderr."""
    before = dump()
    result = cli(*map(str, args), code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert dump() == before, "the database changed"
    return result.stderr


def test_the_corpus_is_complete():
    on_disk = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file()}
    listed = {f"orders/{n}" for n in ORDER_FILES} | {f"apply/{n}" for n in APPLY_FILES}
    assert on_disk - {"orders/valid_for_unknown_store.csv"} == listed
    assert len(listed) >= 15


@pytest.mark.parametrize("name", sorted(ORDER_FILES))
def test_bad_orders_file(name: str):
    path = DATA / "orders" / name
    line, names = ORDER_FILES[name]
    message = failing("orders", "import", path, "--store", "web")
    assert f"{path}, line {line}" in message
    assert names in message


@pytest.mark.parametrize("name", sorted(APPLY_FILES))
def test_bad_apply_file(name: str):
    path = DATA / "apply" / name
    line, names = APPLY_FILES[name]
    message = failing("apply", path)
    assert f"{path}, line {line}" in message
    assert names in message


def test_unknown_store_for_import():
    path = DATA / "orders" / "valid_for_unknown_store.csv"
    message = failing("orders", "import", path, "--store", "nosuch")
    assert "Unknown store 'nosuch'" in message
    # The same file imports into a store that exists.
    cli("orders", "import", path, "--store", "web")


def test_undecodable_bytes_name_the_field():
    message = failing("orders", "import", DATA / "orders" / "latin1.csv", "--store", "web")
    assert "field 'name'" in message


@pytest.mark.parametrize("name", sorted(set(ORDER_FILES) - {"already_present.csv"}))
def test_core_parse_refuses_without_the_database(name: str):
    with pytest.raises(InputError) as info:
        parse_orders(DATA / "orders" / name, None)
    assert f"line {ORDER_FILES[name][0]}" in str(info.value)


def test_running_out_of_memory_is_one_sentence_and_writes_nothing(monkeypatch: pytest.MonkeyPatch):
    # An input within the file limits can still be more than a small machine holds (a 999,999-row
    # import under `ulimit -v`): the sentence, exit 1 and the rolled-back transaction, never a traceback.
    from statusctl.storage.changedb import Writes

    cli("config", "set", "UseStatusUpdates", "true")
    before = dump()

    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(Writes, "flush", exhausted)  # inside the transaction, as a big file's rows would be
    ran = cli("apply", str(ROOT / "examples" / "apply.csv"), code=1)
    assert ran.stderr.strip() == ("Error: statusctl ran out of memory; nothing was written. Split the input into "
                                  "smaller files, or run it where more memory is free.")
    assert "Traceback" not in ran.stdout + ran.stderr
    assert dump() == before
