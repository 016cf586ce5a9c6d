"""Input files that attack: endless devices, pipes, huge files, endless lines, calendar-edge dates (issue 11.9, 11.12).

`orders import` and `apply` read a regular file only, streamed line by line
within stated limits (file size, line length, rows). Anything else ends in one
sentence naming the file (and the line and field where there is one), exit 1,
no traceback, and the database exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statusctl.core.inputs import MAX_FILE_BYTES, MAX_LINE_BYTES, MAX_ROWS

from ..helpers import cli, dump, error_of, setup_shop

HEADER = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"
COMMANDS = {"import": ["orders", "import", "{file}", "--store", "web"], "apply": ["apply", "{file}"]}


def refused(command: str, file: Path | str) -> str:
    """Run the command on `file`; it must fail in one sentence and leave the database as it was."""
    before = dump()
    args = [str(file) if a == "{file}" else a for a in COMMANDS[command]]
    message = error_of(*args)
    assert dump() == before, "a refused input changed the database"
    return message


@pytest.fixture
def shop(db_file: Path) -> Path:
    setup_shop()
    return db_file


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_not_read(shop: Path, command: str, device: str):
    assert refused(command, device) == f"Error: {device}: is a device, not a regular file; save what it gives to a file and read that.\n"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_is_refused_without_waiting_for_a_writer(shop: Path, tmp_path: Path, command: str):
    """A real process: opening a FIFO with no writer would block it for ever."""
    fifo = tmp_path / "orders.csv"
    os.mkfifo(fifo)
    args = [str(fifo) if a == "{file}" else a for a in COMMANDS[command]]
    before = dump()
    proc = subprocess.run([sys.executable, "-m", "statusctl", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"Error: {fifo}: is a pipe, not a regular file; save what it gives to a file and read that.\n"
    assert dump() == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_file_past_the_size_limit_is_refused_before_it_is_read(shop: Path, tmp_path: Path, command: str):
    big = tmp_path / "huge.csv"
    with big.open("wb") as f:
        f.write(HEADER.encode())
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: it costs no disk, and reading it would cost 256 MiB
    message = refused(command, big)
    assert message == (f"Error: {big}: is larger than 256 MiB; files of at most 256 MiB, 1,000,000 rows and lines "
                       "of 1 MiB; split a bigger file.\n")


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("ending", [b"", b"\r"])
def test_an_endless_line_is_refused_at_the_line_limit(shop: Path, tmp_path: Path, command: str, ending: bytes):
    """No newline for 2 MiB (or only lone CRs, which CSV reads as line ends but the line limit still counts)."""
    path = tmp_path / "long.csv"
    head = HEADER if command == "import" else "action,order\n"
    path.write_bytes(head.encode() + (b"a" * 1000 + ending) * (2 * MAX_LINE_BYTES // 1000))
    message = refused(command, path)
    if ending:  # lone CRs end CSV lines: the rows are bad, not long
        assert f"{path}, line 2" in message, message
    else:
        assert message == (f"Error: {path}, line 2: is longer than 1 MiB; files of at most 256 MiB, 1,000,000 rows "
                           "and lines of 1 MiB; split a bigger file.\n")


def test_a_jsonl_line_past_the_limit_is_refused(shop: Path, tmp_path: Path):
    path = tmp_path / "apply.jsonl"
    path.write_text('{"action": "fire", "event": "order-approved", "order": "1001"}\n'
                    '{"action": "fire", "order": "1001", "note": "' + "n" * MAX_LINE_BYTES + '"}\n')
    assert f"{path}, line 2: is longer than 1 MiB" in refused("apply", path)


@pytest.mark.slow
def test_more_rows_than_the_limit_are_refused(shop: Path, tmp_path: Path):
    path = tmp_path / "many.csv"
    row = b"fire,order-approved,1001\n"
    path.write_bytes(b"action,event,order\n" + row * (MAX_ROWS + 1))
    message = refused("apply", path)
    assert message == (f"Error: {path}: holds more than 1,000,000 rows; files of at most 256 MiB, 1,000,000 rows "
                       "and lines of 1 MiB; split a bigger file.\n")


def test_the_limits_are_in_the_help():
    for args in (["orders", "import", "--help"], ["apply", "--help"]):
        shown = " ".join(cli(*args).stdout.split())
        assert f"{MAX_FILE_BYTES // 2**20} MiB" in shown and f"{MAX_ROWS:,} rows" in shown, shown
        assert "not a pipe or device" in shown


def test_undecodable_bytes_name_line_and_field_when_streamed(shop: Path, tmp_path: Path):
    path = tmp_path / "latin1.csv"
    lines = [HEADER.encode()] + [f"L{i},2026-11-20,Lee,lee@example.com,02139,SKU-{i},Mug,1\n".encode() for i in range(5000)]
    lines.append("L9,2026-11-20,Ren\xe9e,r@example.com,02139,SKU-9,Mug,1\n".encode("latin-1"))
    path.write_bytes(b"".join(lines))
    assert refused("import", path) == (f"Error: {path}, line 5002, field 'customer_name': bytes are not valid UTF-8 "
                                       "(save the file as UTF-8).\n")


# -- 11.12: order dates that cannot be shown --------------------------------------------------------

EDGES = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T03:00:00+14:00",
         "9999-12-31T23:00:00-12:00", "0001-01-01", "9999-12-31", "0001-01-01T12:00:00", "9999-12-31T00:00:00Z"]


@pytest.mark.parametrize("when", EDGES)
def test_an_order_date_that_cannot_be_shown_is_refused_naming_file_line_and_field(shop: Path, tmp_path: Path, when: str):
    path = tmp_path / "edge.csv"
    path.write_text(HEADER + f"E1,2026-11-20,Lee,lee@example.com,02139,SKU-1,Mug,1\n"
                    f"E2,{when},Lee,lee@example.com,02139,SKU-1,Mug,1\n")
    message = refused("import", path)
    assert message == (f"Error: {path}, line 3, field 'order_date': {when!r} cannot be shown in every time zone "
                       "(moved to UTC or to a local time it falls outside the years 1 to 9999).\n")


def test_an_edge_date_in_json_names_the_order(shop: Path, tmp_path: Path):
    path = tmp_path / "edge.json"
    path.write_text('[{"order_number": "J1", "order_date": "9999-12-31T23:59:59-05:00", "customer_name": "Lee",\n'
                    '  "customer_email": "lee@example.com", "ship_postal_code": "02139",\n'
                    '  "items": [{"sku": "S", "name": "Mug", "quantity": 1}]}]\n')
    assert f"{path}, line 1 (order 1), field 'order_date': '9999-12-31T23:59:59-05:00' cannot be shown" in refused("import", path)


@pytest.mark.parametrize("when", ["0001-01-03T00:00:00+05:00", "9999-12-30T00:00:00-05:00", "0001-01-02", "1970-01-01T00:00:00Z"])
def test_dates_near_the_edges_that_can_be_shown_are_taken(shop: Path, tmp_path: Path, when: str):
    path = tmp_path / "near.csv"
    path.write_text(HEADER + f"N1,{when},Lee,lee@example.com,02139,SKU-1,Mug,1\n")
    cli("orders", "import", path, "--store", "web")
    shown = cli("orders", "show", "N1", "--json").stdout
    assert when[:10] in shown or when.startswith("1970")
