"""The `Database` layer on every driver: binding, transactions, dialect, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from meerkat.db import (
    Database,
    DatabaseError,
    InsertIgnore,
    IntegrityError,
    QueryTimeout,
    Transaction,
    TransactionConflict,
    Upsert,
)

UPSERT = Upsert("mongoose_cluster_id", ("k", "v"), key=("k",), update=("v",))
INSERT_NEW = InsertIgnore("mongoose_cluster_id", ("k", "v"), key=("k",))


async def test_parameters_are_bound_not_formatted(database: Database) -> None:
    tricky = "x'); DROP TABLE users; -- ? %s $1 \\"
    assert await database.execute(INSERT_NEW, tricky, "?") == 1
    assert await database.fetchval("SELECT v FROM mongoose_cluster_id WHERE k = ?", tricky) == "?"
    assert await database.fetchval("SELECT COUNT(*) FROM users") == 0


async def test_question_marks_inside_literals_are_not_placeholders(database: Database) -> None:
    await database.execute(INSERT_NEW, "a", "b")
    row = await database.fetchone("SELECT '?', v, '%' FROM mongoose_cluster_id WHERE k = ?", "a")
    assert row == ("?", "b", "%")


async def test_upsert_inserts_then_updates(database: Database) -> None:
    await database.execute(UPSERT, "cluster_id", "one")
    await database.execute(UPSERT, "cluster_id", "two")
    assert await database.fetchall("SELECT k, v FROM mongoose_cluster_id") == [
        ("cluster_id", "two")
    ]


async def test_insert_ignore_reports_whether_it_inserted(database: Database) -> None:
    assert await database.execute(INSERT_NEW, "k", "first") == 1
    assert await database.execute(INSERT_NEW, "k", "second") == 0
    assert await database.fetchval("SELECT v FROM mongoose_cluster_id") == "first"


async def test_fetchone_and_fetchval_return_none_when_there_are_no_rows(
    database: Database,
) -> None:
    assert await database.fetchone("SELECT k FROM mongoose_cluster_id") is None
    assert await database.fetchval("SELECT k FROM mongoose_cluster_id") is None


async def test_execute_returns_the_number_of_affected_rows(database: Database) -> None:
    for k in "abc":
        await database.execute(INSERT_NEW, k, "v")
    assert await database.execute("DELETE FROM mongoose_cluster_id WHERE k <> ?", "a") == 2


async def test_insert_id_returns_increasing_ids(database: Database) -> None:
    sql = (
        "INSERT INTO offline_message (timestamp, server, username, from_jid, packet) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    first = await database.insert_id(sql, 1, "s", "u", "f", b"<m/>")
    second = await database.insert_id(sql, 2, "s", "u", "f", b"<m/>")
    assert second > first > 0


async def test_transaction_commits_when_the_block_ends(database: Database) -> None:
    async with database.transaction() as tx:
        await tx.execute(INSERT_NEW, "a", "1")
        assert await tx.fetchval("SELECT v FROM mongoose_cluster_id WHERE k = ?", "a") == "1"
    assert await database.fetchval("SELECT COUNT(*) FROM mongoose_cluster_id") == 1


async def test_transaction_rolls_back_when_the_block_raises(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await tx.execute(INSERT_NEW, "a", "1")
            raise RuntimeError("abort")
    assert await database.fetchval("SELECT COUNT(*) FROM mongoose_cluster_id") == 0


async def test_primary_key_violation_raises_integrity_error(database: Database) -> None:
    sql = "INSERT INTO mongoose_cluster_id (k, v) VALUES (?, ?)"
    await database.execute(sql, "k", "v")
    with pytest.raises(IntegrityError):
        await database.execute(sql, "k", "v")
    assert await database.fetchval("SELECT COUNT(*) FROM mongoose_cluster_id") == 1


async def test_bad_sql_raises_database_error_and_the_pool_stays_usable(
    database: Database,
) -> None:
    with pytest.raises(DatabaseError):
        await database.fetchall("SELECT nope FROM nowhere")
    assert await database.fetchval("SELECT COUNT(*) FROM users") == 0


async def test_bytes_round_trip_exactly(database: Database) -> None:
    blob = bytes(range(256)) * 300
    await database.execute(
        "INSERT INTO vcard (server, username, vcard) VALUES (?, ?, ?)", "s", "u", blob
    )
    assert bytes(await database.fetchval("SELECT vcard FROM vcard")) == blob


async def test_concurrent_queries_share_the_pool(database: Database) -> None:
    import asyncio

    results = await asyncio.gather(
        *(database.fetchval("SELECT COUNT(*) FROM users") for _ in range(50))
    )
    assert results == [0] * 50
    stats = database.statistics()
    assert stats["in_use"] == 0
    assert 1 <= stats["idle"] <= stats["size"]


async def test_concurrent_transactions_all_commit(database: Database) -> None:
    import asyncio

    async def add(n: int) -> None:
        async with database.transaction() as tx:
            count = await tx.fetchval("SELECT COUNT(*) FROM mongoose_cluster_id")
            await tx.execute(INSERT_NEW, f"k{n}", str(count))

    await asyncio.gather(*(add(n) for n in range(30)))
    assert await database.fetchval("SELECT COUNT(*) FROM mongoose_cluster_id") == 30


async def test_a_busy_pool_makes_callers_wait_for_a_free_connection(
    db_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    import asyncio

    db = await make_database(db_driver, workers=1)
    async with db.transaction() as tx:
        waiting = asyncio.ensure_future(db.fetchval("SELECT COUNT(*) FROM users"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await tx.execute(INSERT_NEW, "k", "v")
    assert await waiting == 0
    assert db.statistics() == {"size": 1, "idle": 1, "in_use": 0}


async def test_waiting_for_a_connection_is_bounded_by_the_query_timeout(
    db_driver: str, make_database: Callable[..., Awaitable[Database]]
) -> None:
    db = await make_database(db_driver, workers=1, query_timeout=0.3)
    async with db.transaction():
        with pytest.raises(QueryTimeout):
            await db.fetchval("SELECT COUNT(*) FROM users")
    assert await db.fetchval("SELECT COUNT(*) FROM users") == 0


async def test_run_transaction_reruns_the_body_after_a_conflict(database: Database) -> None:
    attempts = []

    async def body(tx: Transaction) -> int:
        attempts.append(1)
        await tx.execute(INSERT_NEW, f"k{len(attempts)}", "v")
        if len(attempts) == 1:
            raise TransactionConflict("deadlock (simulated)")
        return len(attempts)

    assert await database.run_transaction(body) == 2
    assert await database.fetchall("SELECT k FROM mongoose_cluster_id") == [("k2",)]


async def test_run_transaction_gives_up_after_the_last_attempt(database: Database) -> None:
    async def body(tx: Transaction) -> None:
        raise TransactionConflict("always")

    with pytest.raises(TransactionConflict):
        await database.run_transaction(body, attempts=2)
