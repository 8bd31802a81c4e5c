"""The shape every driver adapter has, and shared helpers."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from meerkat.db.errors import DatabaseError
from meerkat.db.settings import DatabaseSettings

Params = Sequence[object]
Row = tuple[Any, ...]  # database values: str, int, bytes, None...


class Connection(Protocol):
    """One open database connection. Not safe for concurrent use: the pool serialises it.

    SQL handed to these methods is already in the driver's placeholder style.
    """

    async def execute(self, sql: str, params: Params) -> int:
        """Run a statement; return the number of affected rows (0 for DDL)."""
        ...

    async def fetchall(self, sql: str, params: Params) -> list[Row]:
        """Run a query; return all rows as tuples."""
        ...

    async def insert_id(self, sql: str, params: Params, id_column: str) -> int:
        """Run an INSERT into a table with an auto-increment `id_column`; return the new id."""
        ...

    async def script(self, sql: str) -> None:
        """Run several `;`-separated statements without parameters (schema files)."""
        ...

    async def begin(self) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    def is_usable(self) -> bool:
        """False when the connection is known to be dead (checked without I/O)."""
        ...

    async def close(self) -> None:
        """Close politely."""
        ...

    def abort(self) -> Awaitable[object] | None:
        """Close at once without I/O (state unknown); may return something to await later."""
        ...


def tls_context(settings: DatabaseSettings) -> ssl.SSLContext | None:
    """The client TLS context for `settings`, or None when TLS is off.

    An unreadable CA file is a configuration error (`DatabaseError`), not an unreachable
    server: the drivers would otherwise report it as "cannot reach".
    """
    if not settings.tls:
        return None
    try:
        return ssl.create_default_context(cafile=settings.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise DatabaseError(f"cannot load the database CA file {settings.cafile!r}: {exc}") from exc


def split_script(sql: str) -> list[str]:
    """Split a schema file into statements for drivers that run one at a time.

    A `;` at the end of a line ends a statement; whole-line `--` comments are dropped. Our
    schema files keep to that shape (no procedures, no `;` inside literals).
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        if not line.strip() or line.lstrip().startswith("--"):
            continue
        current.append(line.rstrip())
        if current[-1].endswith(";"):
            statements.append("\n".join(current)[:-1].strip())
            current = []
    if current:
        statements.append("\n".join(current).strip())
    return statements
