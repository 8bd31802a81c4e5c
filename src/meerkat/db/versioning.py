"""Schema creation, checking and migration (the code behind `Database.*_schema`).

The schema files `schema/{sqlite,pg,mysql}.sql` describe the latest version and end by
recording it in `schema_version`; migrations (`meerkat.db.migrations`) take an older
database there step by step. `check` refuses to run against a schema that is missing,
incomplete, older or newer than the code, and says which and what to do.
"""

from __future__ import annotations

import re
import time
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from meerkat.db.errors import DatabaseError, SchemaError
from meerkat.db.migrations import Migration, latest_version, load_migrations

if TYPE_CHECKING:
    from meerkat.db.database import Database

SCHEMA_FILES = {"sqlite": "sqlite.sql", "pgsql": "pg.sql", "mysql": "mysql.sql"}
VERSION_TABLE = "schema_version"


@cache
def schema_sql(driver: str) -> str:
    """The text of the shipped schema file for `driver`."""
    return (resources.files("meerkat.db") / "schema" / SCHEMA_FILES[driver]).read_text("utf-8")


@cache
def expected_tables(driver: str) -> frozenset[str]:
    """Table names the schema file creates."""
    return frozenset(re.findall(r"CREATE TABLE (\w+)", schema_sql(driver)))


def _schema_file_hint(db: Database) -> str:
    return f"src/meerkat/db/schema/{SCHEMA_FILES[db.settings.driver]} (see docs/databases.md)"


async def _tables(db: Database) -> set[str]:
    if db.dialect.name == "pgsql" and await db.fetchval("SELECT current_schema()") is None:
        raise SchemaError(
            f"{db.settings.describe()}: PostgreSQL schema {db.settings.schema!r} (search_path) "
            "does not exist; create it with CREATE SCHEMA or fix the `schema` setting"
        )
    rows = await db.fetchall(db.dialect.list_tables())
    return {str(row[0]) for row in rows}


async def current_version(db: Database) -> int | None:
    """MAX(version) from schema_version, None when there is no such table or row."""
    if VERSION_TABLE not in await _tables(db):
        return None
    value = await db.fetchval(f"SELECT MAX(version) FROM {VERSION_TABLE}")
    return None if value is None else int(value)


async def check(db: Database, migrations: tuple[Migration, ...] | None = None) -> None:
    """Raise `SchemaError` naming the problem unless the schema is complete and current."""
    migrations = load_migrations() if migrations is None else migrations
    wanted = latest_version(migrations)
    where = db.settings.describe()
    tables = await _tables(db)
    ours = expected_tables(db.settings.driver)
    if VERSION_TABLE not in tables:
        present = sorted(ours & tables)
        if present:
            raise SchemaError(
                f"{where} has Meerkat/MongooseIM tables ({', '.join(present)}) but no "
                f"{VERSION_TABLE} table: the schema is incomplete or from MongooseIM; "
                f"compare it with {_schema_file_hint(db)}"
            )
        raise SchemaError(
            f"{where} has no Meerkat schema: apply {_schema_file_hint(db)} "
            "or start with create_schema = true"
        )
    version = await current_version(db)
    if version is None:
        raise SchemaError(f"{where}: the {VERSION_TABLE} table is empty; re-apply the schema")
    if version < wanted:
        pending = ", ".join(
            f"{m.version} ({m.description})" for m in migrations if m.version > version
        )
        raise SchemaError(
            f"{where}: schema version {version} is older than version {wanted} required by "
            f"this Meerkat; run the migrations ({pending}) with Database.migrate() or start "
            "with create_schema = true"
        )
    if version > wanted:
        raise SchemaError(
            f"{where}: schema version {version} is newer than version {wanted} known to "
            "this Meerkat; upgrade Meerkat (or restore a backup made before the upgrade)"
        )
    missing = sorted(ours - tables)
    if missing:
        raise SchemaError(
            f"{where}: schema version {version} but tables are missing: {', '.join(missing)}"
        )


async def create(db: Database) -> bool:
    """Create the schema from the shipped file; False (no change) if one exists already."""
    tables = await _tables(db)
    if VERSION_TABLE in tables:
        return False
    if expected_tables(db.settings.driver) & tables:
        await check(db)  # raises with the "incomplete schema" explanation
    sql = schema_sql(db.settings.driver)
    if db.settings.driver == "sqlite":
        sql = f"BEGIN;\n{sql}\nCOMMIT;"  # SQLite DDL is transactional; PG scripts already are
    try:
        await db.script(sql)
    except DatabaseError:
        # Another node may have created it at the same moment: fine if it is now complete.
        if VERSION_TABLE in await _tables(db):
            await check(db)
            return False
        raise
    return True


async def migrate(db: Database, migrations: tuple[Migration, ...] | None = None) -> list[int]:
    """Apply the steps above the current version; the versions applied, in order."""
    migrations = load_migrations() if migrations is None else migrations
    version = await current_version(db)
    if version is None:
        raise SchemaError(
            f"{db.settings.describe()} has no Meerkat schema to migrate: create it first "
            f"({_schema_file_hint(db)})"
        )
    applied: list[int] = []
    for migration in migrations:
        if migration.version <= version:
            continue
        statements = migration.statements.get(db.dialect.name)
        if statements is None:
            raise SchemaError(f"migration {migration.version} has no {db.dialect.name} SQL")
        # MySQL commits DDL implicitly; elsewhere the step and its record are atomic.
        async with db.transaction() as tx:
            for statement in statements:
                await tx.execute(statement)
            await tx.execute(
                f"INSERT INTO {VERSION_TABLE} (version, description, applied_at) VALUES (?, ?, ?)",
                migration.version,
                migration.description,
                int(time.time()),
            )
        applied.append(migration.version)
    return applied
