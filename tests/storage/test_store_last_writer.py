"""SqlLastStore's group-committing writer under failure: retried without loss, bounded,
flushed at close. The database is SQLite with its `execute` wrapped to fail or stall on
purpose (the contract tests run every backend; these are about the writer, not the SQL)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from meerkat.db import Database, DatabaseError, DatabaseUnavailable, Query, QueryTimeout, Upsert
from meerkat.stores import SqlLastStore, UserKey

USERS = [UserKey("localhost", f"u{i}") for i in range(250)]
MakeDatabase = Callable[..., Awaitable[Database]]


class Faulty:
    """Wraps `db.execute`: counts upserts and the rows they carried, fails or holds them."""

    def __init__(self, db: Database) -> None:
        self.real = db.execute
        self.upserts = 0
        self.rows: list[str] = []
        """Usernames of every row a successful upsert wrote, in order."""
        self.timeouts = 0
        """Upserts still to fail with QueryTimeout (as the deadline did in a logout storm)."""
        self.refuse = ""
        """A username whose rows the database refuses for good."""
        self.hold: asyncio.Event | None = None
        db.execute = self.execute  # type: ignore[method-assign]

    async def execute(self, sql: Query, *params: object) -> int:
        if not (isinstance(sql, Upsert) and sql.table == "last"):
            return await self.real(sql, *params)
        self.upserts += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.timeouts:
            self.timeouts -= 1
            raise QueryTimeout("the database did not answer within 5s")
        names = [str(p) for p in params[1::4]]
        if self.refuse in names:
            raise DatabaseError("value too long for type character varying(250)")
        result = await self.real(sql, *params)
        self.rows += names
        return result


@pytest.fixture
async def db(make_database: MakeDatabase) -> Database:
    return await make_database("sqlite")


async def rows_in(db: Database) -> dict[str, int]:
    return {str(u): int(s) for u, s in await db.fetchall("SELECT username, seconds FROM last")}


async def test_statements_that_time_out_are_retried_until_every_row_is_written_once(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = Faulty(db)
    faulty.timeouts = 3
    last = SqlLastStore(db, retry_delays=(0.01,))
    await asyncio.gather(*(last.set_last(u, i, "") for i, u in enumerate(USERS)))
    assert await rows_in(db) == {u.username: i for i, u in enumerate(USERS)}
    assert sorted(faulty.rows) == sorted(u.username for u in USERS)  # each row written once
    retried = [r for r in caplog.records if r.getMessage().startswith("last_write_retried")]
    assert len(retried) == 3 and all(r.levelno == logging.WARNING for r in retried)
    assert last.statistics()["pending"] == 0


async def test_a_newer_row_recorded_while_its_batch_failed_is_the_one_kept(db: Database) -> None:
    faulty = Faulty(db)
    faulty.timeouts = 1
    faulty.hold = asyncio.Event()
    last = SqlLastStore(db, retry_delays=(0.01,))
    first = asyncio.create_task(last.set_last(USERS[0], 100, "old"))
    while faulty.upserts == 0:
        await asyncio.sleep(0)
    newer = asyncio.create_task(last.set_last(USERS[0], 200, "new"))
    await asyncio.sleep(0)
    faulty.hold.set()
    await asyncio.gather(first, newer)
    assert await last.get_last(USERS[0]) == (200, "new")
    assert faulty.rows == ["u0"]


async def test_a_row_the_database_refuses_fails_only_its_own_caller(db: Database) -> None:
    faulty = Faulty(db)
    faulty.refuse = "u7"
    last = SqlLastStore(db)
    results = await asyncio.gather(
        *(last.set_last(u, i, "") for i, u in enumerate(USERS[:20])), return_exceptions=True
    )
    failed = [USERS[i].username for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == ["u7"]
    assert len(await rows_in(db)) == 19


async def test_rows_waiting_for_the_database_are_bounded(db: Database) -> None:
    faulty = Faulty(db)
    faulty.hold = asyncio.Event()
    last = SqlLastStore(db, max_pending=10)
    writes = [asyncio.create_task(last.set_last(u, 1, "")) for u in USERS[:60]]
    await asyncio.sleep(0.05)
    stats = last.statistics()
    assert stats["pending"] <= 10  # the batch in flight is not counted
    assert stats["waiting_for_room"] >= 60 - 10 - 10
    faulty.hold.set()
    await asyncio.gather(*writes)
    assert len(await rows_in(db)) == 60


async def test_closing_writes_rows_whose_callers_are_gone(db: Database) -> None:
    faulty = Faulty(db)
    faulty.hold = asyncio.Event()
    last = SqlLastStore(db)
    writer = asyncio.create_task(last.set_last(USERS[0], 5, "bye"))
    await asyncio.sleep(0.01)
    writer.cancel()  # a session cancelled at stop: its row must still be written
    faulty.hold.set()
    await last.close()
    assert await rows_in(db) == {"u0": 5}


async def test_closing_gives_up_on_a_database_that_stays_down_and_says_so(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = Faulty(db)
    faulty.timeouts = 1_000_000
    last = SqlLastStore(db, retry_delays=(0.01,))
    writer = asyncio.create_task(last.set_last(USERS[0], 5, "bye"))
    await asyncio.sleep(0.05)
    await last.close(timeout=0.1)
    with pytest.raises(DatabaseUnavailable, match="closed before the row was written"):
        await writer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "last_rows_not_written rows=1"
    ]
