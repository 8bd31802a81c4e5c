"""MySQL / MariaDB through asyncmy.

asyncmy binds parameters client side (escaped literals, `%s` placeholders); with
`binary_prefix` bytes are sent as `_binary'...'` so BLOB columns get them unchanged. The
session runs in autocommit with `TRADITIONAL` sql_mode: an over-long value is an error,
never a silent truncation.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import asyncmy
import asyncmy.errors as myerr

from meerkat.db.drivers.base import Params, Row, split_script, tls_context
from meerkat.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    TransactionConflict,
)
from meerkat.db.settings import DatabaseSettings

_UNREACHABLE = {2002, 2003, 2005}
_BAD_LOGIN = {1044, 1045, 1698}
_UNKNOWN_DB = 1049
# server gone / lost / killed / shutting down / too many connections / idle disconnect
_GONE = {1040, 1053, 1927, 2006, 2013, 2014, 2055, 4031}
_CONFLICT = {1205, 1213}


def _code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


class MysqlConnection:
    """One asyncmy connection."""

    def __init__(self, conn: Any, where: str) -> None:
        self._conn = conn
        self._where = where

    @classmethod
    async def connect(cls, settings: DatabaseSettings) -> MysqlConnection:
        where = f"mysql server {settings.host}:{settings.port}"
        try:
            conn = await asyncmy.connect(
                host=settings.host,
                port=settings.port or 3306,
                user=settings.username or None,
                password=settings.password,
                database=settings.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=settings.connect_timeout,
                binary_prefix=True,
                sql_mode="TRADITIONAL",
                ssl=tls_context(settings),
            )
        except (myerr.MySQLError, OSError, TimeoutError) as exc:
            code = _code(exc)
            if code in _BAD_LOGIN:
                reason = f"{where} rejected the credentials of user {settings.username!r}"
            elif code == _UNKNOWN_DB:
                reason = f"database {settings.database!r} does not exist on {where}"
            else:
                reason = f"cannot reach {where}"
            raise DatabaseUnavailable(f"{reason}: {exc}") from exc
        return cls(conn, where)

    def _translate(self, exc: BaseException) -> DatabaseError:
        code = _code(exc)
        if code in _GONE or isinstance(exc, OSError | myerr.InterfaceError) or not self.is_usable():
            return DatabaseUnavailable(f"lost connection to {self._where}: {exc}")
        if isinstance(exc, myerr.IntegrityError):
            return IntegrityError(str(exc))
        if code in _CONFLICT:
            return TransactionConflict(str(exc))
        return DatabaseError(f"mysql: {exc}")

    async def _run(self, sql: str, params: Params, fetch: bool) -> tuple[int, list[Row], int]:
        try:
            async with self._conn.cursor() as cursor:
                await cursor.execute(sql, tuple(params))
                rows = [tuple(r) for r in await cursor.fetchall()] if fetch else []
                return cursor.rowcount, rows, cursor.lastrowid or 0
        except (myerr.MySQLError, OSError) as exc:
            raise self._translate(exc) from exc

    async def execute(self, sql: str, params: Params) -> int:
        count, _, _ = await self._run(sql, params, fetch=False)
        return max(count, 0)

    async def fetchall(self, sql: str, params: Params) -> list[Row]:
        _, rows, _ = await self._run(sql, params, fetch=True)
        return rows

    async def insert_id(self, sql: str, params: Params, id_column: str) -> int:
        _, _, last = await self._run(sql, params, fetch=False)
        return int(last)

    async def script(self, sql: str) -> None:
        for statement in split_script(sql):
            await self._run(statement.replace("%", "%%"), (), fetch=False)

    async def begin(self) -> None:
        await self.execute("START TRANSACTION", ())

    async def commit(self) -> None:
        await self.execute("COMMIT", ())

    async def rollback(self) -> None:
        await self.execute("ROLLBACK", ())

    def is_usable(self) -> bool:
        # COMPAT: asyncmy has no public "socket closed by peer" flag; `_stream_broken` is a
        # cheap property that becomes true as soon as the loop sees the server's FIN.
        return bool(self._conn.connected) and not getattr(self._conn, "_stream_broken", False)

    async def close(self) -> None:
        try:
            await self._conn.ensure_closed()
        except (myerr.MySQLError, OSError):
            self._conn.close()

    def abort(self) -> Awaitable[object] | None:
        self._conn.close()
        return None
