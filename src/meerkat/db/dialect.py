"""The few real SQL differences between SQLite, PostgreSQL and MySQL/MariaDB.

Queries are written once, with `?` placeholders and portable SQL. The dialect

* converts placeholders (`$1, $2...` for asyncpg, `%s` for asyncmy; `?` stays for sqlite),
* renders the statements that have no common syntax: insert-if-absent, upsert and
  row locking (`Upsert`, `InsertIgnore`, `LockingSelect` values stand in for them among a
  store's query constants),
* knows how to ask the catalogue which tables exist.

What is deliberately *not* here: `LIMIT ?` is accepted by all three; ids of inserted rows
come from `Database.insert_id` (RETURNING on PostgreSQL, lastrowid elsewhere); binary
columns take and return `bytes` on every driver.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Upsert:
    """INSERT a row, or UPDATE `update` columns when a row with the same `key` exists.

    `rows` > 1: that many rows in one statement (parameters row after row); their keys must
    differ (PostgreSQL refuses to update one row twice in a statement)."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    update: tuple[str, ...]
    rows: int = 1


@dataclass(frozen=True, slots=True)
class InsertIgnore:
    """INSERT a row unless one with the same primary/unique `key` exists (rowcount 0 then)."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LockingSelect:
    """`SELECT ... FOR UPDATE` inside a transaction: locks the rows it reads until commit.

    SQLite has no row locks and needs none: `BEGIN IMMEDIATE` already serialises writers.
    """

    select: str


Query = str | Upsert | InsertIgnore | LockingSelect


def _convert(sql: str, style: str) -> str:
    """Replace `?` outside quoted literals/identifiers by the driver's placeholder."""
    out: list[str] = []
    n = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}" if style == "numeric" else "%s")
            continue
        if ch == "%" and style == "format":
            out.append("%%")  # asyncmy formats the query with `%`
            continue
        out.append(ch)
    if quote is not None:
        raise ValueError(f"unterminated quote in SQL: {sql!r}")
    return "".join(out)


class Dialect:
    """One database flavour. Instances are immutable and shared by a `Database`."""

    name: str = ""
    placeholder_style: str = "qmark"  # qmark | numeric | format
    supports_returning: bool = False

    def sql(self, query: Query) -> str:
        """The driver-ready text of `query` (placeholders converted, specials rendered)."""
        if isinstance(query, Upsert):
            text = self.upsert(query)
        elif isinstance(query, InsertIgnore):
            text = self.insert_ignore(query)
        elif isinstance(query, LockingSelect):
            text = query.select if self.name == "sqlite" else f"{query.select} FOR UPDATE"
        else:
            text = query
        return _convert(text, self.placeholder_style) if self.placeholder_style != "qmark" else text

    @staticmethod
    def _values(columns: tuple[str, ...]) -> str:
        return ", ".join("?" for _ in columns)

    @staticmethod
    def _rows(q: Upsert) -> str:
        row = f"({', '.join('?' for _ in q.columns)})"
        return ", ".join(row for _ in range(q.rows))

    def upsert(self, q: Upsert) -> str:
        """SQLite and PostgreSQL share `ON CONFLICT (...) DO UPDATE SET c = excluded.c`."""
        sets = ", ".join(f"{c} = excluded.{c}" for c in q.update)
        return (
            f"INSERT INTO {q.table} ({', '.join(q.columns)}) VALUES {self._rows(q)} "
            f"ON CONFLICT ({', '.join(q.key)}) DO UPDATE SET {sets}"
        )

    def insert_ignore(self, q: InsertIgnore) -> str:
        return (
            f"INSERT INTO {q.table} ({', '.join(q.columns)}) VALUES ({self._values(q.columns)}) "
            f"ON CONFLICT ({', '.join(q.key)}) DO NOTHING"
        )

    def list_tables(self) -> str:
        """A query returning one row per table name visible in the current schema."""
        raise NotImplementedError


class SqliteDialect(Dialect):
    name = "sqlite"
    placeholder_style = "qmark"
    supports_returning = True

    def list_tables(self) -> str:
        return "SELECT name FROM sqlite_master WHERE type = 'table'"


class PostgresDialect(Dialect):
    name = "pgsql"
    placeholder_style = "numeric"
    supports_returning = True

    def list_tables(self) -> str:
        return (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )


class MysqlDialect(Dialect):
    name = "mysql"
    placeholder_style = "format"
    supports_returning = False  # MySQL has none; MariaDB only for INSERT/DELETE

    def upsert(self, q: Upsert) -> str:
        # VALUES(c) is deprecated in MySQL 8.0.20+ but the only spelling MariaDB knows.
        sets = ", ".join(f"{c} = VALUES({c})" for c in q.update)
        return (
            f"INSERT INTO {q.table} ({', '.join(q.columns)}) VALUES {self._rows(q)} "
            f"ON DUPLICATE KEY UPDATE {sets}"
        )

    def insert_ignore(self, q: InsertIgnore) -> str:
        # Not INSERT IGNORE: that also downgrades real errors (truncation...) to warnings.
        # Assigning a key column to itself changes nothing, so rowcount is 0 on a duplicate.
        first = q.key[0]
        return (
            f"INSERT INTO {q.table} ({', '.join(q.columns)}) VALUES ({self._values(q.columns)}) "
            f"ON DUPLICATE KEY UPDATE {first} = {first}"
        )

    def list_tables(self) -> str:
        return "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"


DIALECTS: dict[str, Dialect] = {
    "sqlite": SqliteDialect(),
    "pgsql": PostgresDialect(),
    "mysql": MysqlDialect(),
}
