"""DatabaseSettings and the dialect's SQL rewriting."""

from __future__ import annotations

import dataclasses

import pytest

from meerkat.db import DatabaseSettings, InsertIgnore, LockingSelect, Upsert
from meerkat.db.dialect import DIALECTS


def test_driver_dependent_defaults_are_resolved() -> None:
    assert DatabaseSettings().port is None
    assert DatabaseSettings().create_schema is True
    assert DatabaseSettings(driver="pgsql").port == 5432
    assert DatabaseSettings(driver="pgsql").create_schema is False
    assert DatabaseSettings(driver="mysql").port == 3306
    assert DatabaseSettings(driver="mysql", create_schema=True).create_schema is True


def test_every_field_is_documented() -> None:
    for f in dataclasses.fields(DatabaseSettings):
        assert f.metadata.get("doc"), f.name


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"driver": "oracle"}, "driver: must be one of"),
        ({"workers": 0}, "workers: must be at least 1"),
        ({"query_timeout": 0}, "query_timeout: must be positive"),
        ({"port": 70000}, "port: must be 1..65535"),
        ({"database": ""}, "database: must not be empty"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(changes: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        DatabaseSettings(**changes)


def test_describe_never_shows_the_password() -> None:
    text = DatabaseSettings(driver="mysql", username="u", password="hunter2").describe()
    assert text == "mysql://u@127.0.0.1:3306/meerkat.sqlite3"
    assert "hunter2" not in text


def test_placeholders_are_converted_outside_quotes_only() -> None:
    sql = "SELECT '?', \"a?\", x FROM t WHERE a = ? AND b LIKE '%?%' AND c = ?"
    assert DIALECTS["sqlite"].sql(sql) == sql
    assert DIALECTS["pgsql"].sql(sql) == (
        "SELECT '?', \"a?\", x FROM t WHERE a = $1 AND b LIKE '%?%' AND c = $2"
    )
    assert DIALECTS["mysql"].sql(sql) == (
        "SELECT '?', \"a?\", x FROM t WHERE a = %s AND b LIKE '%%?%%' AND c = %s"
    )


def test_upsert_and_insert_ignore_are_rendered_per_dialect() -> None:
    up = Upsert("t", ("k", "v"), key=("k",), update=("v",))
    ins = InsertIgnore("t", ("k", "v"), key=("k",))
    assert DIALECTS["pgsql"].sql(up) == (
        "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
    )
    assert DIALECTS["sqlite"].sql(ins) == (
        "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"
    )
    assert DIALECTS["mysql"].sql(up) == (
        "INSERT INTO t (k, v) VALUES (%s, %s) ON DUPLICATE KEY UPDATE v = VALUES(v)"
    )
    assert DIALECTS["mysql"].sql(ins) == (
        "INSERT INTO t (k, v) VALUES (%s, %s) ON DUPLICATE KEY UPDATE k = k"
    )


def test_locking_selects_lock_rows_only_where_there_are_row_locks() -> None:
    query = LockingSelect("SELECT id FROM t WHERE a = ?")
    assert DIALECTS["sqlite"].sql(query) == "SELECT id FROM t WHERE a = ?"
    assert DIALECTS["pgsql"].sql(query) == "SELECT id FROM t WHERE a = $1 FOR UPDATE"
    assert DIALECTS["mysql"].sql(query) == "SELECT id FROM t WHERE a = %s FOR UPDATE"
