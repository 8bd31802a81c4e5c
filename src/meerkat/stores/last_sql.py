"""`LastStore` on MongooseIM's `last` table (index on (server, seconds) for the counts).

Writes are group-committed: every logout records one row, and each statement costs a trip
to the database (a thread hop for SQLite, a round trip for the others) and a commit. A
`set_last` waits for the store's write lock; whoever holds it writes every row recorded so
far as one multi-row upsert, so callers that queued meanwhile find their row written and
return without a statement of their own. Alone, a write is written at once (no timer, no
background task). Reads first wait until the rows recorded on this node are written.
"""

from __future__ import annotations

import asyncio

from meerkat.db import Database, Upsert
from meerkat.stores.types import UserKey

GET_LAST = "SELECT seconds, state FROM last WHERE server = ? AND username = ?"
COLUMNS = ("server", "username", "seconds", "state")
DELETE_LAST = "DELETE FROM last WHERE server = ? AND username = ?"
COUNT_ACTIVE = "SELECT COUNT(*) FROM last WHERE server = ? AND seconds >= ?"
LIST_OLD = "SELECT username FROM last WHERE server = ? AND seconds < ?"
#: rows per statement at most (also bounds the number of distinct statements rendered)
MAX_ROWS = 32
#: SET_LAST_ROWS[n] upserts n rows
SET_LAST_ROWS = {
    n: Upsert("last", COLUMNS, ("server", "username"), ("seconds", "state"), rows=n)
    for n in range(1, MAX_ROWS + 1)
}


class SqlLastStore:
    """`LastStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: dict[UserKey, tuple[int, str]] = {}
        self._lock = asyncio.Lock()

    async def get_last(self, user: UserKey) -> tuple[int, str] | None:
        await self._settle()
        row = await self._db.fetchone(GET_LAST, user[0], user[1])
        return None if row is None else (int(row[0]), str(row[1]))

    async def set_last(self, user: UserKey, seconds: int, status: str) -> None:
        key = UserKey(*user)
        self._pending[key] = (seconds, status)
        async with self._lock:
            while key in self._pending:  # else a batch written meanwhile held it
                await self._write_pending()

    async def remove_user(self, user: UserKey) -> None:
        async with self._lock:
            self._pending.pop(UserKey(*user), None)
            await self._db.execute(DELETE_LAST, user[0], user[1])

    async def count_active(self, server: str, since: int) -> int:
        await self._settle()
        return int(await self._db.fetchval(COUNT_ACTIVE, server, since))

    async def list_old(self, server: str, before: int) -> list[str]:
        await self._settle()
        return sorted(str(row[0]) for row in await self._db.fetchall(LIST_OLD, server, before))

    async def _settle(self) -> None:
        """Until every row recorded on this node is written (nothing to wait for: no cost)."""
        if self._pending or self._lock.locked():
            async with self._lock:
                while self._pending:
                    await self._write_pending()

    async def _write_pending(self) -> None:
        """Write up to MAX_ROWS recorded rows (the lock is held); on failure they stay recorded
        unless a newer row for the same user came meanwhile."""
        batch = dict(list(self._pending.items())[:MAX_ROWS])
        for key in batch:
            del self._pending[key]
        params: list[object] = []
        for (server, username), (seconds, status) in batch.items():
            params += (server, username, seconds, status)
        try:
            await self._db.execute(SET_LAST_ROWS[len(batch)], *params)
        except BaseException:
            for key, row in batch.items():
                self._pending.setdefault(key, row)
            raise
