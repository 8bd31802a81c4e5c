"""A small connection pool with automatic reconnection.

At most `size` connections exist: each is either idle or checked out by one caller. A
connection comes back to the idle list only when the caller's block ended cleanly (or with a
plain SQL error); anything else (lost connection, timeout, cancellation) discards it,
because its protocol state is unknown. A lost connection also discards all idle ones: when
the server restarts they are all dead, and finding that out one failed query at a time
would fail up to `size` queries in a row.

New connections are made lazily, so a pool whose server is down keeps no state to repair:
the first query after the server is back simply connects.

Callers queue for a connection in arrival order. A queued caller gives up (`QueryTimeout`)
only when no connection came back healthy for `patience` seconds, not after `patience` in
the queue: in a burst (a logout storm, a node stopping) the queue drains at the database's
pace and every caller gets its turn, while a hung database still fails every caller within
about `patience` instead of serialising them one deadline after another.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from meerkat.db.drivers.base import Connection
from meerkat.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout

log = logging.getLogger(__name__)


class Pool:
    """Connections made by `connect`, at most `size` of them."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], size: int) -> None:
        self._connect = connect
        self._size = size
        self._idle: deque[Connection] = deque()
        self._free = size  # permits not held by a caller
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._healthy_returns = 0  # connections handed back usable: the queue's progress
        self._in_use = 0
        self._closing: list[Awaitable[object]] = []
        self._closed = False

    def add_idle(self, conn: Connection) -> None:
        """Adopt an already open connection (the one `Database.open` checked with)."""
        self._idle.append(conn)

    def connection(self, patience: float | None = None) -> _Checkout:
        """``async with pool.connection(patience) as conn:`` checks out a connection for the
        duration of the block.

        Queued behind other callers, wait while connections keep coming back healthy; fail
        with `QueryTimeout` once none did for `patience` seconds (None: wait). Connecting is
        bounded by `patience` too; the block itself by the caller.
        """
        return _Checkout(self, patience)

    async def _acquire(self, patience: float | None) -> None:
        if self._free and not self._waiters:  # the common case: no future, no timer
            self._free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            while True:
                seen = self._healthy_returns
                done, _ = await asyncio.wait((turn,), timeout=patience)
                if done:
                    return
                if self._healthy_returns == seen:
                    raise QueryTimeout(f"no database connection came free within {patience:g}s")
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()  # handed to us as we gave up: pass it on
            else:
                turn.cancel()  # `_release` skips it
            raise

    def _release(self) -> None:
        """Hand the permit to the first caller still waiting, else keep it free."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    async def _take(self, patience: float | None) -> Connection:
        while self._idle:
            conn = self._idle.pop()  # most recently used: the likeliest to be alive
            if conn.is_usable():
                return conn
            self._discard(conn)
        if patience is None:
            return await self._connect()
        try:  # a timer only when connecting, which is rare
            async with asyncio.timeout(patience):
                return await self._connect()
        except TimeoutError as exc:
            raise QueryTimeout(f"could not connect within {patience:g}s") from exc

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
                log.debug("db_close_failed reason=%s", repr(exc))
                self._discard(conn)
        pending, self._closing = self._closing, []
        for waitable in pending:
            try:
                await asyncio.wait_for(waitable, 5)
            except (TimeoutError, DatabaseError, OSError, ValueError) as exc:
                log.debug("db_close_failed reason=%s", repr(exc))


class _Checkout:
    """`Pool.connection`'s context manager: a class, not an `asynccontextmanager`, because every
    query enters one and a generator-based one costs several times more per use.

    The connection goes back to the idle list when the block ended cleanly or with a plain
    SQL error; a lost connection (`DatabaseUnavailable`) also drops the idle ones, a timed-out
    one (`QueryTimeout`) only itself; anything else (cancellation ...) discards it."""

    __slots__ = ("_conn", "_patience", "_pool")

    def __init__(self, pool: Pool, patience: float | None) -> None:
        self._pool = pool
        self._patience = patience

    async def __aenter__(self) -> Connection:
        pool = self._pool
        if pool._closed:
            raise DatabaseUnavailable("the database pool is closed")
        await pool._acquire(self._patience)
        try:
            conn = await pool._take(self._patience)
        except BaseException:
            pool._release()
            raise
        pool._in_use += 1
        self._conn = conn
        return conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pool, conn = self._pool, self._conn
        if kind is None:
            keep = True
        elif issubclass(kind, DatabaseUnavailable):
            keep = False  # this connection is mid-statement or dead
            if not issubclass(kind, QueryTimeout):
                pool.discard_idle()  # the others are suspect too
        else:
            keep = issubclass(kind, DatabaseError)  # the statement failed, the connection is fine
        pool._in_use -= 1
        if keep and conn.is_usable() and not pool._closed:
            pool._idle.append(conn)
            pool._healthy_returns += 1
        else:
            pool._discard(conn)
        pool._release()
