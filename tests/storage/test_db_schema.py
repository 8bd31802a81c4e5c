"""Schema creation, checking and migration on every driver."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from meerkat.db import Database, DatabaseSettings, SchemaError
from meerkat.db.migrations import Migration, latest_version, load_migrations
from meerkat.db.versioning import SCHEMA_FILES, check, expected_tables, migrate, schema_sql

SHIPPED = load_migrations()
CURRENT = latest_version(SHIPPED)
STEP_NEXT = Migration(
    version=CURRENT + 1,
    description="test column",
    statements={
        "sqlite": ("ALTER TABLE last ADD COLUMN note TEXT",),
        "pgsql": ("ALTER TABLE last ADD COLUMN note TEXT",),
        "mysql": ("ALTER TABLE last ADD COLUMN note MEDIUMTEXT",),
    },
)


def test_every_schema_file_records_the_version_the_code_expects() -> None:
    wanted = latest_version(load_migrations())
    for driver in SCHEMA_FILES:
        recorded = re.findall(r"VALUES \((\d+), ", schema_sql(driver))
        assert recorded == [str(wanted)], driver


def test_every_schema_file_creates_the_same_tables() -> None:
    tables = {driver: expected_tables(driver) for driver in SCHEMA_FILES}
    assert tables["sqlite"] == tables["pgsql"] == tables["mysql"]
    assert {"users", "rosterusers", "offline_message", "discovery_nodes"} <= tables["pgsql"]


async def test_an_empty_database_fails_the_check_naming_the_schema_file(
    db_settings: DatabaseSettings, db_data_dir: Path
) -> None:
    db = await Database.open(db_settings, db_data_dir)
    try:
        assert await db.schema_version() is None
        with pytest.raises(SchemaError, match=r"has no Meerkat schema: apply .*\.sql"):
            await db.check_schema()
    finally:
        await db.close()


async def test_created_schema_passes_the_check_and_is_not_created_twice(
    db_settings: DatabaseSettings, db_data_dir: Path
) -> None:
    db = await Database.open(db_settings, db_data_dir)
    try:
        assert await db.create_schema() is True
        await db.check_schema()
        assert await db.schema_version() == latest_version(load_migrations())
        assert await db.create_schema() is False
        assert await db.migrate() == []
    finally:
        await db.close()


async def test_ensure_schema_creates_only_when_configured(
    db_settings: DatabaseSettings, db_data_dir: Path
) -> None:
    db = await Database.open(db_settings.replace(create_schema=False), db_data_dir)
    try:
        with pytest.raises(SchemaError, match="no Meerkat schema"):
            await db.ensure_schema()
    finally:
        await db.close()
    db = await Database.open(db_settings.replace(create_schema=True), db_data_dir)
    try:
        await db.ensure_schema()
        await db.ensure_schema()
        await db.check_schema()
    finally:
        await db.close()


async def test_an_older_schema_asks_for_migrations_and_migrate_brings_it_up(
    database: Database,
) -> None:
    steps = (*SHIPPED, STEP_NEXT)
    nxt = CURRENT + 1
    with pytest.raises(
        SchemaError, match=rf"version {CURRENT} is older than version {nxt}.*{nxt} \(test column\)"
    ):
        await check(database, steps)
    assert await migrate(database, steps) == [CURRENT + 1]
    await check(database, steps)
    assert await database.schema_version() == CURRENT + 1
    await database.execute(
        "INSERT INTO last (server, username, seconds, state, note) VALUES (?, ?, ?, ?, ?)",
        "s",
        "u",
        1,
        "",
        "migrated",
    )
    assert await migrate(database, steps) == []


async def test_a_newer_schema_is_refused(database: Database) -> None:
    await database.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
        99,
        "from the future",
        0,
    )
    with pytest.raises(SchemaError, match=f"version 99 is newer than version {CURRENT}"):
        await database.check_schema()


async def test_a_missing_table_is_named(database: Database) -> None:
    await database.execute("DROP TABLE vcard")
    with pytest.raises(SchemaError, match="tables are missing: vcard"):
        await database.check_schema()


async def test_tables_without_a_version_table_are_reported_as_incomplete(
    database: Database,
) -> None:
    await database.execute("DROP TABLE schema_version")
    with pytest.raises(SchemaError, match="no schema_version table"):
        await database.check_schema()
    with pytest.raises(SchemaError, match="no schema_version table"):
        await database.create_schema()


async def test_migrating_without_a_schema_is_refused(
    db_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(db_driver, create_schema=False)
    with pytest.raises(SchemaError, match="no Meerkat schema to migrate"):
        await db.migrate()


@pytest.mark.pg
async def test_a_missing_postgresql_schema_is_named(
    make_db_settings: Callable[..., Awaitable[DatabaseSettings]], db_data_dir: Path
) -> None:
    settings = await make_db_settings("pgsql")
    db = await Database.open(settings.replace(schema="meerkat_no_such_schema"), db_data_dir)
    try:
        with pytest.raises(SchemaError, match=r"'meerkat_no_such_schema' .* does not exist"):
            await db.create_schema()
    finally:
        await db.close()
