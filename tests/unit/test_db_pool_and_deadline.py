"""The pool's checkout and the query deadline, without a database: what happens to a
connection after each way a block can end, and when a cancellation becomes a timeout."""

from __future__ import annotations

import asyncio

import pytest

from meerkat.db.database import _deadline
from meerkat.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout
from meerkat.db.pool import Pool


class FakeConnection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.aborted = False

    def is_usable(self) -> bool:
        return not self.aborted

    def abort(self) -> None:
        self.aborted = True

    async def close(self) -> None:
        self.aborted = True


def pool_of(size: int = 3) -> tuple[Pool, list[FakeConnection]]:
    made: list[FakeConnection] = []

    async def connect() -> FakeConnection:
        made.append(FakeConnection(f"c{len(made)}"))
        return made[-1]

    return Pool(connect, size), made  # type: ignore[arg-type]


async def test_a_block_that_ends_cleanly_or_with_an_sql_error_gives_its_connection_back() -> None:
    pool, made = pool_of()
    async with pool.connection(1.0) as first:
        pass
    with pytest.raises(DatabaseError):
        async with pool.connection(1.0) as again:
            assert again is first
            raise DatabaseError("syntax error")
    async with pool.connection(1.0) as third:
        assert third is first
    assert len(made) == 1 and pool.statistics() == {"size": 3, "idle": 1, "in_use": 0}


async def test_a_lost_connection_is_dropped_with_the_idle_ones() -> None:
    pool, made = pool_of()
    async with pool.connection(1.0), pool.connection(1.0):
        pass  # two connections, both idle now
    with pytest.raises(DatabaseUnavailable):
        async with pool.connection(1.0) as conn:
            raise DatabaseUnavailable("connection reset")
    assert conn.aborted and all(c.aborted for c in made)
    assert pool.statistics()["idle"] == 0


async def test_a_timed_out_connection_is_dropped_alone() -> None:
    pool, made = pool_of()
    async with pool.connection(1.0), pool.connection(1.0):
        pass
    with pytest.raises(QueryTimeout):
        async with pool.connection(1.0) as conn:
            raise QueryTimeout("too slow")
    assert conn.aborted and [c for c in made if not c.aborted] != []
    assert pool.statistics()["idle"] == 1


async def test_a_cancelled_block_drops_its_connection_and_frees_its_place() -> None:
    pool, made = pool_of(size=1)
    entered = asyncio.Event()

    async def hold() -> None:
        async with pool.connection(1.0):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made[0].aborted
    async with pool.connection(1.0) as conn:  # the only place is free again
        assert conn is made[1]


async def test_a_closed_pool_refuses_checkouts() -> None:
    pool, _ = pool_of()
    await pool.close()
    with pytest.raises(DatabaseUnavailable):
        async with pool.connection(1.0):
            pass


async def test_a_query_past_its_deadline_raises_query_timeout() -> None:
    with pytest.raises(QueryTimeout):
        async with _deadline(0.01):
            await asyncio.sleep(1)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_query_within_its_deadline_leaves_no_timer_behind() -> None:
    async with _deadline(0.02):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # would be cancelled here if the timer were still armed


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def query() -> None:
        async with _deadline(5):
            await asyncio.sleep(1)

    task = asyncio.create_task(query())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_arriving_with_the_deadline_stays_a_cancellation() -> None:
    # As asyncio.timeout: the deadline claims a cancellation only when no one else asked.
    async def query() -> None:
        deadline = _deadline(5)
        async with deadline:
            deadline._expire()  # the deadline fires, and before the task wakes up ...
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # ... someone else cancels it too
            await asyncio.sleep(1)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(query())
