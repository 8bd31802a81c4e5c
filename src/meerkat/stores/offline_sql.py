"""`OfflineStore` on MongooseIM's `offline_message` table.

The per-user limit is checked and the messages inserted in one transaction that first locks
the recipient's `users` row (`SELECT ... FOR UPDATE`, a primary-key lookup), so concurrent
deliveries to one user queue up behind each other and the limit holds exactly, also when
the queue is empty. SQLite gets the same from `BEGIN IMMEDIATE`. Locking the queued rows
instead would leave an empty queue unprotected on PostgreSQL (nothing to lock) and, on
MySQL, make simultaneous first deliveries deadlock on each other's gap locks often enough to
exhaust `run_transaction`'s retries under load. Only for a recipient without a `users` row
(not one of our accounts) are the queued rows locked instead.
`pop_all` deletes only the rows it read (id <= the last one), so a message stored while it
runs is not lost. It runs at every login, and most queues are empty: one plain read answers
that case, and only a queue that held something is read again and deleted in a transaction
(which on SQLite takes the write lock, `BEGIN IMMEDIATE`).
"""

from __future__ import annotations

from meerkat.db import Database, LockingSelect, Transaction
from meerkat.stores.offline import OfflineMessage
from meerkat.stores.types import UserKey, from_blob, to_blob

COUNT = "SELECT COUNT(*) FROM offline_message WHERE server = ? AND username = ?"
LOCK_USER = LockingSelect("SELECT 1 FROM users WHERE server = ? AND username = ?")
LOCK_QUEUE = LockingSelect("SELECT id FROM offline_message WHERE server = ? AND username = ?")
INSERT = (
    "INSERT INTO offline_message (timestamp, expire, server, username, from_jid, packet) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_QUEUE = (
    "SELECT id, timestamp, expire, from_jid, packet FROM offline_message "
    "WHERE server = ? AND username = ? ORDER BY id"
)
DELETE_UP_TO = "DELETE FROM offline_message WHERE server = ? AND username = ? AND id <= ?"
DELETE_USER = "DELETE FROM offline_message WHERE server = ? AND username = ?"
DELETE_EXPIRED = "DELETE FROM offline_message WHERE expire IS NOT NULL AND expire <= ?"
DELETE_OLDER = "DELETE FROM offline_message WHERE server = ? AND timestamp < ?"


class SqlOfflineStore:
    """`OfflineStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, user: UserKey, messages: list[OfflineMessage], max_per_user: int) -> int:
        if not messages or max_per_user <= 0:
            return 0
        server, username = user

        async def store_some(tx: Transaction) -> int:
            if not await tx.fetchall(LOCK_USER, server, username):
                await tx.fetchall(LOCK_QUEUE, server, username)
            # A new statement, so a new snapshot: counts what a writer we waited for added.
            queued = int(await tx.fetchval(COUNT, server, username))
            accepted = messages[: max(0, max_per_user - queued)]
            for m in accepted:
                await tx.execute(
                    INSERT, m.timestamp, m.expire, server, username, m.from_jid, to_blob(m.packet)
                )
            return len(accepted)

        return await self._db.run_transaction(store_some)

    async def pop_all(self, user: UserKey, now: int | None = None) -> list[OfflineMessage]:
        server, username = user
        if not await self._db.fetchall(SELECT_QUEUE, server, username):
            return []  # the common case: one statement, no transaction, no write lock
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(SELECT_QUEUE, server, username)
            if not rows:
                return []
            await tx.execute(DELETE_UP_TO, server, username, rows[-1][0])
        messages = [
            OfflineMessage(
                timestamp=int(ts),
                from_jid=str(from_jid),
                packet=from_blob(packet),
                expire=None if expire is None else int(expire),
            )
            for _, ts, expire, from_jid, packet in rows
        ]
        return [m for m in messages if now is None or not m.expired(now)]

    async def count(self, user: UserKey) -> int:
        return int(await self._db.fetchval(COUNT, user[0], user[1]))

    async def remove_user(self, user: UserKey) -> None:
        await self._db.execute(DELETE_USER, user[0], user[1])

    async def delete_expired(self, now: int) -> int:
        return await self._db.execute(DELETE_EXPIRED, now)

    async def delete_older_than(self, server: str, cutoff: int) -> int:
        return await self._db.execute(DELETE_OLDER, server, cutoff)
