"""A small connection pool with automatic reconnection.

At most `size` connections exist: each is either idle or checked out by one caller. A
connection comes back to the idle list only when the caller's block ended cleanly (or with a
plain SQL error); anything else (lost connection, timeout, cancellation) discards it,
because its protocol state is unknown. A lost connection also discards all idle ones: when
the server restarts they are all dead, and finding that out one failed query at a time
would fail up to `size` queries in a row.

New connections are made lazily, so a pool whose server is down keeps no state to repair:
the first query after the server is back simply connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from meerkat.db.drivers.base import Connection
from meerkat.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout

log = logging.getLogger(__name__)


class Pool:
    """Connections made by `connect`, at most `size` of them."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._idle: deque[Connection] = deque()
        self._permits = asyncio.Semaphore(size)
        self._in_use = 0
        self._closing: list[Awaitable[object]] = []
        self._closed = False

    def add_idle(self, conn: Connection) -> None:
        """Adopt an already open connection (the one `Database.open` checked with)."""
        self._idle.append(conn)

    @asynccontextmanager
    async def connection(self, acquire_timeout: float | None = None) -> AsyncIterator[Connection]:
        """Check out a connection for the duration of the block.

        Waiting for a free connection (and connecting) is bounded by `acquire_timeout` if
        given; otherwise callers bound the whole block with their own timeout.
        """
        if self._closed:
            raise DatabaseUnavailable("the database pool is closed")
        if acquire_timeout is None:  # the common case: no timer objects for every query
            await self._permits.acquire()
        else:
            try:
                async with asyncio.timeout(acquire_timeout):
                    await self._permits.acquire()
            except TimeoutError as exc:
                raise QueryTimeout(
                    f"no free database connection within {acquire_timeout:g}s"
                ) from exc
        try:
            if acquire_timeout is None:
                conn = await self._take()
            else:
                try:
                    async with asyncio.timeout(acquire_timeout):
                        conn = await self._take()
                except TimeoutError as exc:
                    raise QueryTimeout(f"could not connect within {acquire_timeout:g}s") from exc
            self._in_use += 1
            keep = False
            try:
                yield conn
                keep = True
            except DatabaseUnavailable:
                self.discard_idle()
                raise
            except DatabaseError:
                keep = True  # the statement failed, the connection is fine
                raise
            finally:
                self._in_use -= 1
                if keep and conn.is_usable() and not self._closed:
                    self._idle.append(conn)
                else:
                    self._discard(conn)
        finally:
            self._permits.release()

    async def _take(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()  # most recently used: the likeliest to be alive
            if conn.is_usable():
                return conn
            self._discard(conn)
        return await self._connect()

    def _discard(self, conn: Connection) -> None:
        pending = conn.abort()
        if pending is not None:
            self._closing = [p for p in self._closing if not getattr(p, "done", bool)()]
            self._closing.append(pending)

    def discard_idle(self) -> None:
        """Drop every idle connection (after a failure suggesting they are all dead)."""
        while self._idle:
            self._discard(self._idle.pop())

    def statistics(self) -> dict[str, int]:
        """Pool size, idle and checked out connections."""
        return {"size": self._size, "idle": len(self._idle), "in_use": self._in_use}

    async def close(self) -> None:
        """Close idle connections; checked-out ones are closed when returned."""
        self._closed = True
        while self._idle:
            conn = self._idle.pop()
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (DatabaseError, TimeoutError, OSError) as exc:
                log.debug("db_close_failed", extra={"reason": repr(exc)})
                self._discard(conn)
        pending, self._closing = self._closing, []
        for waitable in pending:
            try:
                await asyncio.wait_for(waitable, 5)
            except (TimeoutError, DatabaseError, OSError, ValueError) as exc:
                log.debug("db_close_failed", extra={"reason": repr(exc)})
