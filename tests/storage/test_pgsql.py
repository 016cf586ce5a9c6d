"""SQLite-style statements and rows on psycopg (statusctl.storage.pgsql): no server needed."""

from __future__ import annotations

import pytest

from statusctl.storage.pgsql import _row_class, translate


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?', \"?\" FROM t WHERE a = ?", "SELECT '?', \"?\" FROM t WHERE a = %s"),
    ("SELECT 'it''s ?', ? ", "SELECT 'it''s ?', %s "),
    ("SELECT x LIKE '50%' , ? % 7", "SELECT x LIKE '50%%' , %s %% 7"),
    ("SELECT E'a\\'?', ?", "SELECT E'a\\'?', %s"),
    ("SELECT ? -- why?\n, ?", "SELECT %s -- why?\n, %s"),
    ("SELECT /* ? */ ?", "SELECT /* ? */ %s"),
    ("DO $$ BEGIN PERFORM '?'; END $$; SELECT ?", "DO $$ BEGIN PERFORM '?'; END $$; SELECT %s"),
    ("SELECT $tag$ ? $tag$, ?", "SELECT $tag$ ? $tag$, %s"),
    ("SELECT at - :start FROM h WHERE at < :end_at", "SELECT at - %(start)s FROM h WHERE at < %(end_at)s"),
    ("SELECT value::bigint, ? ::text", "SELECT value::bigint, %s ::text"),
    ("SELECT ':name', ?", "SELECT ':name', %s"),
])
def test_placeholders_become_psycopgs_outside_quotes_and_comments(sql, expected):
    assert translate(sql) == expected


def test_a_statement_is_translated_once():
    sql = "SELECT ? AS only_here_once"
    translate.cache_clear()
    translate(sql)
    translate(sql)
    assert translate.cache_info().hits == 1


def test_rows_read_by_position_name_any_case_and_keys_like_sqlite3_row():
    row = tuple.__new__(_row_class(("name", "count", "name")), ("Shipped", 3, "other"))
    assert row[0] == "Shipped" and row[-1] == "other" and row[1:] == (3, "other")
    assert row["name"] == "Shipped" and row["COUNT"] == 3  # the first of two equal names, as sqlite3.Row
    assert row.keys() == ["name", "count", "name"]
    assert row == ("Shipped", 3, "other")
    name, count, _ = row
    assert (name, count) == ("Shipped", 3)
    assert dict(zip(row.keys()[:2], row[:2], strict=True)) == {"name": "Shipped", "count": 3}
    with pytest.raises(IndexError, match="missing"):
        row["missing"]
    assert type(row) is _row_class(("name", "count", "name"))  # one class per column set
