"""`LastStore` on MongooseIM's `last` table (index on (server, seconds) for the counts)."""

from __future__ import annotations

from meerkat.db import Database, Upsert
from meerkat.stores.types import UserKey

GET_LAST = "SELECT seconds, state FROM last WHERE server = ? AND username = ?"
SET_LAST = Upsert(
    "last", ("server", "username", "seconds", "state"), ("server", "username"), ("seconds", "state")
)
DELETE_LAST = "DELETE FROM last WHERE server = ? AND username = ?"
COUNT_ACTIVE = "SELECT COUNT(*) FROM last WHERE server = ? AND seconds >= ?"
LIST_OLD = "SELECT username FROM last WHERE server = ? AND seconds < ?"


class SqlLastStore:
    """`LastStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_last(self, user: UserKey) -> tuple[int, str] | None:
        row = await self._db.fetchone(GET_LAST, user[0], user[1])
        return None if row is None else (int(row[0]), str(row[1]))

    async def set_last(self, user: UserKey, seconds: int, status: str) -> None:
        await self._db.execute(SET_LAST, user[0], user[1], seconds, status)

    async def remove_user(self, user: UserKey) -> None:
        await self._db.execute(DELETE_LAST, user[0], user[1])

    async def count_active(self, server: str, since: int) -> int:
        return int(await self._db.fetchval(COUNT_ACTIVE, server, since))

    async def list_old(self, server: str, before: int) -> list[str]:
        return sorted(str(row[0]) for row in await self._db.fetchall(LIST_OLD, server, before))
