"""`LastStore` on MongooseIM's `last` table (index on (server, seconds) for the counts).

Writes are group-committed: every logout records one row, and each statement costs a trip
to the database (a thread hop for SQLite, a round trip for the others) and a commit. A
`set_last` records its row (a newer row for the same user replaces it) and waits until a
statement holding it (or a newer row) is written. One writer task per store writes what is
recorded, up to `MAX_ROWS` rows per multi-row upsert, one statement at a time, and ends when
nothing is left; alone, a row is written at once (no timer).

Hard parts:
- a mass logout records thousands of rows at once: taking a batch costs O(batch), not a copy
  of everything recorded, and callers wait on their own future, not in one lock's queue
  (whose wake-ups hand the lock on one caller per loop turn);
- a statement that fails for a passing reason (`DatabaseUnavailable`: a query deadline, a
  restart; `TransactionConflict`) is retried after a growing pause (`RETRY_DELAYS`) with
  its rows still recorded (unless a newer row for the user came meanwhile): a failure costs
  time, never a row, and logs one warning per statement instead of an error per caller;
  its callers keep waiting. Rows refused for good (`DatabaseError`) are retried one by
  one, so that one bad row fails only its own caller;
- bounded: at most `max_pending` rows wait; a caller beyond that first waits for room (a
  database that stays down slows logouts down instead of growing memory);
- reads (`get_last`, counts) first wait until what this node recorded is written (at most
  the query deadline); `close()` writes what is left when the node stops and logs what it
  could not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque

from meerkat.db import Database, DatabaseError, DatabaseUnavailable, TransactionConflict, Upsert
from meerkat.stores.types import UserKey

log = logging.getLogger(__name__)

GET_LAST = "SELECT seconds, state FROM last WHERE server = ? AND username = ?"
COLUMNS = ("server", "username", "seconds", "state")
DELETE_LAST = "DELETE FROM last WHERE server = ? AND username = ?"
COUNT_ACTIVE = "SELECT COUNT(*) FROM last WHERE server = ? AND seconds >= ?"
LIST_OLD = "SELECT username FROM last WHERE server = ? AND seconds < ?"
#: rows per statement at most (also bounds the number of distinct statements rendered)
MAX_ROWS = 100
#: SET_LAST_ROWS[n] upserts n rows
SET_LAST_ROWS = {
    n: Upsert("last", COLUMNS, ("server", "username"), ("seconds", "state"), rows=n)
    for n in range(1, MAX_ROWS + 1)
}
MAX_PENDING = 100_000
"""Rows recorded and not yet written at most (per store, i.e. per node)."""
RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds before retrying a failed statement (the last one repeats)."""
CLOSE_TIMEOUT = 10.0
"""Seconds `close()` keeps writing (and retrying) what is still recorded."""

Row = tuple[int, str]


class SqlLastStore:
    """`LastStore` on any `Database`."""

    def __init__(
        self,
        db: Database,
        *,
        max_pending: int = MAX_PENDING,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self._db = db
        self._max_pending = max_pending
        self._retry_delays = retry_delays
        self._pending: dict[UserKey, Row] = {}
        """Rows recorded and not written yet, oldest first."""
        self._waiters: dict[UserKey, list[asyncio.Future[None]]] = {}
        """Callers waiting for their user's row (or a newer one) to be written."""
        self._room: deque[asyncio.Future[None]] = deque()
        """Callers waiting for `_pending` to have room."""
        self._writer: asyncio.Task[None] | None = None
        self.statements = 0
        """Statements the writer ran, retries included (tests, statistics)."""

    async def get_last(self, user: UserKey) -> tuple[int, str] | None:
        await self._settle()
        row = await self._db.fetchone(GET_LAST, user[0], user[1])
        return None if row is None else (int(row[0]), str(row[1]))

    async def set_last(self, user: UserKey, seconds: int, status: str) -> None:
        key = UserKey(*user)
        while len(self._pending) >= self._max_pending and key not in self._pending:
            await self._wait_for_room()
        self._pending[key] = (seconds, status)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        await waiter

    async def remove_user(self, user: UserKey) -> None:
        key = UserKey(*user)
        self._pending.pop(key, None)
        await self._settle()  # a statement in flight may hold the user's row
        await self._db.execute(DELETE_LAST, key[0], key[1])
        self._release(key)

    async def count_active(self, server: str, since: int) -> int:
        await self._settle()
        return int(await self._db.fetchval(COUNT_ACTIVE, server, since))

    async def list_old(self, server: str, before: int) -> list[str]:
        await self._settle()
        return sorted(str(row[0]) for row in await self._db.fetchall(LIST_OLD, server, before))

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Write what is still recorded (retrying for at most `timeout` seconds), then stop
        the writer; rows it could not write are logged."""
        writer = self._writer
        if writer is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(writer), timeout)
        except TimeoutError:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._pending:
            log.error("last_rows_not_written rows=%d", len(self._pending))
            error = DatabaseUnavailable("the store closed before the row was written")
            for key in self._pending:
                self._release(key, error)

    def statistics(self) -> dict[str, int]:
        """Rows recorded and not yet written; callers waiting for room; statements run."""
        return {
            "pending": len(self._pending),
            "waiting_for_room": len(self._room),
            "statements": self.statements,
        }

    # -- the writer ----------------------------------------------------------------------------
    async def _settle(self) -> None:
        """Until every row recorded on this node is written (nothing to wait for: no cost),
        for at most the query deadline (then read what is there)."""
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(self._writer), self._db.settings.query_timeout
                )

    async def _write_loop(self) -> None:
        failures = 0
        try:
            while self._pending:
                batch = self._take(MAX_ROWS)
                try:
                    await self._write(batch)
                except asyncio.CancelledError:  # `close` gave up: the rows count as not written
                    self._restore(batch)
                    raise
                except (DatabaseUnavailable, TransactionConflict) as exc:
                    self._restore(batch)
                    delay = self._retry_delays[min(failures, len(self._retry_delays) - 1)]
                    failures += 1
                    log.warning(
                        "last_write_retried rows=%d pending=%d retry_in=%.1f error=%s",
                        len(batch), len(self._pending), delay, exc,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                except DatabaseError as exc:
                    await self._write_one_by_one(batch, exc)
                    continue
                except Exception as exc:  # a bug: its callers hear of it, the writer goes on
                    log.exception("last_write_crashed rows=%d", len(batch))
                    self._fail(batch, exc)
                    continue
                failures = 0
                self._written(batch)
        finally:
            self._writer = None
            self._wake_room()

    def _take(self, n: int) -> dict[UserKey, Row]:
        """The `n` oldest recorded rows, no longer recorded (O(n))."""
        batch = dict(itertools.islice(self._pending.items(), n))
        for key in batch:
            del self._pending[key]
        return batch

    def _restore(self, batch: dict[UserKey, Row]) -> None:
        """Record a failed batch's rows again, except where a newer row came meanwhile."""
        for key, row in batch.items():
            self._pending.setdefault(key, row)

    async def _write(self, batch: dict[UserKey, Row]) -> None:
        params: list[object] = []
        for (server, username), (seconds, status) in batch.items():
            params += (server, username, seconds, status)
        self.statements += 1
        await self._db.execute(SET_LAST_ROWS[len(batch)], *params)

    async def _write_one_by_one(self, batch: dict[UserKey, Row], error: DatabaseError) -> None:
        """A statement refused for good: write its rows alone, so a bad row fails only its
        own callers (a passing failure sends the rest back to be retried)."""
        if len(batch) > 1:
            log.warning("last_write_split rows=%d error=%s", len(batch), error)
        for i, (key, row) in enumerate(batch.items()):
            if len(batch) > 1:
                try:
                    await self._write({key: row})
                except (DatabaseUnavailable, TransactionConflict):
                    self._restore(dict(itertools.islice(batch.items(), i, None)))
                    return
                except DatabaseError as exc:
                    error = exc
                else:
                    self._written({key: row})
                    continue
            log.error("last_write_failed server=%s user=%s error=%s", key[0], key[1], error)
            self._fail({key: row}, error)

    def _written(self, batch: dict[UserKey, Row]) -> None:
        for key in batch:
            if key not in self._pending:  # else a newer row is on its way: keep waiting
                self._release(key)
        self._wake_room()

    def _fail(self, batch: dict[UserKey, Row], error: BaseException) -> None:
        for key in batch:
            if key not in self._pending:  # else a newer row is on its way: keep waiting
                self._release(key, error)

    def _release(self, key: UserKey, error: BaseException | None = None) -> None:
        for waiter in self._waiters.pop(key, ()):
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    # -- room --------------------------------------------------------------------------------
    async def _wait_for_room(self) -> None:
        room = asyncio.get_running_loop().create_future()
        self._room.append(room)
        try:
            await room
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._room.remove(room)
            raise

    def _wake_room(self) -> None:
        free = self._max_pending - len(self._pending)
        while free > 0 and self._room:
            room = self._room.popleft()
            if not room.done():
                room.set_result(None)
                free -= 1
