"""`statusctl config`: list, get and set the system parameters, with validation."""

from __future__ import annotations

import pytest

from statusctl.core import settings
from statusctl.domain.errors import ConfigError, NotFound
from statusctl.domain.settings import parse_bool

from .helpers import cli, cli_json, dump, error_of, open_db

NAMES = ["UseStatusUpdates", "StackMaxAttempts", "StackRetrySchedule", "StackLeaseSeconds",
         "StackConcurrency", "StackAlertAge", "StackHistoryDays"]


def test_list_json_shows_every_parameter_with_value_default_and_meaning():
    rows = cli_json("config", "list")
    assert [r["name"] for r in rows] == NAMES
    by_name = {r["name"]: r for r in rows}
    assert by_name["UseStatusUpdates"]["value"] == "false"
    assert by_name["UseStatusUpdates"]["default"] == "false"
    assert all(r["meaning"] for r in rows)
    assert set(rows[0]) == {"name", "value", "default", "meaning"}


def test_list_table_names_every_parameter():
    out = cli("config", "list").stdout
    for name in NAMES:
        assert name in out


def test_use_status_updates_is_false_by_default():
    assert cli("config", "get", "UseStatusUpdates").stdout == "false\n"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("true", "true"), ("TRUE", "true"), ("True", "true"), ("yes", "true"), ("YeS", "true"), ("1", "true"),
     ("false", "false"), ("FALSE", "false"), ("no", "false"), ("NO", "false"), ("0", "false"), (" fAlSe ", "false")],
)
def test_booleans_in_any_case(given: str, stored: str):
    out = cli("config", "set", "UseStatusUpdates", given).stdout
    assert out.strip() == f"UseStatusUpdates = {stored}"
    assert cli("config", "get", "UseStatusUpdates").stdout.strip() == stored


def test_parameter_names_are_case_insensitive_and_stored_canonically():
    assert cli("config", "set", "usestatusupdates", "yes").stdout.strip() == "UseStatusUpdates = true"
    assert cli("config", "get", "USESTATUSUPDATES").stdout.strip() == "true"
    rows = {r["name"]: r["value"] for r in cli_json("config", "list")}
    assert rows["UseStatusUpdates"] == "true"


def test_get_json():
    assert cli_json("config", "get", "StackMaxAttempts") == {"name": "StackMaxAttempts", "value": "8"}


@pytest.mark.parametrize("verb", [("get",), ("set", "true")])
def test_unknown_name_exits_1_listing_the_valid_names(verb: tuple[str, ...]):
    cli("init")
    before = dump()
    message = error_of("config", verb[0], "UseStatusUpdate", *verb[1:])
    assert "UseStatusUpdate'" in message
    for name in NAMES:
        assert name in message
    assert dump() == before


@pytest.mark.parametrize(
    ("name", "value", "form"),
    [
        ("UseStatusUpdates", "maybe", "true or false"),
        ("UseStatusUpdates", "", "true or false"),
        ("UseStatusUpdates", "2", "true or false"),
        ("StackMaxAttempts", "abc", "a whole number from 1 to 1000"),
        ("StackMaxAttempts", "0", "a whole number from 1 to 1000"),
        ("StackMaxAttempts", "2.5", "a whole number from 1 to 1000"),
        ("StackConcurrency", "257", "a whole number from 1 to 256"),
        ("StackLeaseSeconds", "-5", "a whole number from 1 to 86400"),
        ("StackRetrySchedule", "10,abc", "seconds separated by commas"),
        ("StackRetrySchedule", "10,-1", "seconds separated by commas"),
        ("StackRetrySchedule", "nan", "seconds separated by commas"),
    ],
)
def test_bad_value_exits_1_with_the_expected_form(name: str, value: str, form: str):
    cli("init")
    before = dump()
    # `--` so that a value like -5 reaches the command (Click would take it for an option).
    message = error_of("config", "set", name, "--", value)
    assert name in message
    assert f"expected {form}" in message
    assert dump() == before


def test_good_values_are_normalised():
    assert cli("config", "set", "StackMaxAttempts", " 12 ").stdout.strip() == "StackMaxAttempts = 12"
    assert cli("config", "set", "StackRetrySchedule", "5, 30 ,0.5").stdout.strip() == "StackRetrySchedule = 5,30,0.5"
    db = open_db()
    try:
        s = settings.stack_settings(db)
        assert s.max_attempts == 12
        assert s.retry_schedule == (5.0, 30.0, 0.5)
    finally:
        db.close()


def test_core_errors_are_typed():
    db = open_db()
    try:
        with pytest.raises(NotFound):
            settings.get_raw(db, "Nope")
        with pytest.raises(ConfigError):
            settings.set_value(db, "UseStatusUpdates", "perhaps")
        assert settings.use_status_updates(db) is False
        settings.set_value(db, "UseStatusUpdates", "On")
        assert settings.use_status_updates(db) is True
    finally:
        db.close()


def test_parse_bool():
    for text in ("true", "TRUE", "yes", "Yes", "1", " 1 "):
        assert parse_bool(text) is True
    for text in ("false", "False", "no", "NO", "0"):
        assert parse_bool(text) is False
    for text in ("", "y", "n", "2", "truthy"):
        assert parse_bool(text) is None


def test_config_without_subcommand_shows_usage():
    result = cli("config", code=2)
    assert "list" in result.output and "set" in result.output
