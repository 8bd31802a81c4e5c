"""OfflineStore contract."""

from __future__ import annotations

import pytest
from storage_payloads import XML_PAYLOADS

from meerkat.stores import OfflineMessage, Stores, UserKey

ALICE = UserKey("localhost", "alice")
BOB = UserKey("localhost", "bob")
CAROL = UserKey("other.example", "carol")


def msg(n: int, expire: int | None = None, packet: str | None = None) -> OfflineMessage:
    return OfflineMessage(
        timestamp=1_700_000_000_000_000 + n,
        from_jid=f"sender{n}@example.com/res",
        packet=packet or f"<message id='{n}'><body>{n}</body></message>",
        expire=expire,
    )


async def test_messages_come_back_oldest_first_and_are_removed(stores: Stores) -> None:
    assert await stores.offline.store(ALICE, [msg(1), msg(2)], max_per_user=100) == 2
    assert await stores.offline.store(ALICE, [msg(3)], max_per_user=100) == 1
    assert await stores.offline.count(ALICE) == 3
    assert await stores.offline.pop_all(ALICE) == [msg(1), msg(2), msg(3)]
    assert await stores.offline.pop_all(ALICE) == []
    assert await stores.offline.count(ALICE) == 0


async def test_queues_are_per_user(stores: Stores) -> None:
    await stores.offline.store(ALICE, [msg(1)], 10)
    await stores.offline.store(BOB, [msg(2)], 10)
    assert await stores.offline.pop_all(BOB) == [msg(2)]
    assert await stores.offline.pop_all(ALICE) == [msg(1)]


async def test_store_respects_the_per_user_limit(stores: Stores) -> None:
    assert await stores.offline.store(ALICE, [msg(i) for i in range(3)], max_per_user=5) == 3
    assert await stores.offline.store(ALICE, [msg(i) for i in range(3, 6)], max_per_user=5) == 2
    assert await stores.offline.store(ALICE, [msg(9)], max_per_user=5) == 0
    assert await stores.offline.store(BOB, [msg(9)], max_per_user=5) == 1
    assert await stores.offline.count(ALICE) == 5
    assert await stores.offline.pop_all(ALICE) == [msg(i) for i in range(5)]


async def test_a_zero_limit_or_no_messages_stores_nothing(stores: Stores) -> None:
    assert await stores.offline.store(ALICE, [msg(1)], max_per_user=0) == 0
    assert await stores.offline.store(ALICE, [], max_per_user=10) == 0
    assert await stores.offline.count(ALICE) == 0


async def test_expired_messages_are_dropped(stores: Stores) -> None:
    await stores.offline.store(ALICE, [msg(1, expire=100), msg(2, expire=300), msg(3)], 10)
    await stores.offline.store(BOB, [msg(4, expire=200)], 10)
    assert await stores.offline.delete_expired(now=200) == 2
    assert await stores.offline.pop_all(ALICE) == [msg(2, expire=300), msg(3)]
    assert await stores.offline.count(BOB) == 0


async def test_pop_all_with_now_skips_expired_messages(stores: Stores) -> None:
    await stores.offline.store(ALICE, [msg(1, expire=100), msg(2, expire=300)], 10)
    assert await stores.offline.pop_all(ALICE, now=200) == [msg(2, expire=300)]
    assert await stores.offline.count(ALICE) == 0


async def test_delete_older_than_only_touches_its_server(stores: Stores) -> None:
    await stores.offline.store(ALICE, [msg(1), msg(5)], 10)
    await stores.offline.store(CAROL, [msg(1)], 10)
    assert await stores.offline.delete_older_than("localhost", msg(3).timestamp) == 1
    assert await stores.offline.pop_all(ALICE) == [msg(5)]
    assert await stores.offline.count(CAROL) == 1


async def test_remove_user_empties_the_queue(stores: Stores) -> None:
    await stores.offline.store(ALICE, [msg(1)], 10)
    await stores.offline.store(BOB, [msg(2)], 10)
    await stores.offline.remove_user(ALICE)
    assert await stores.offline.count(ALICE) == 0
    assert await stores.offline.count(BOB) == 1


@pytest.mark.parametrize("packet", XML_PAYLOADS, ids=["emoji", "quotes", "sql", "nul", "big"])
async def test_packets_round_trip_exactly(stores: Stores, packet: str) -> None:
    message = msg(1, packet=packet)
    await stores.offline.store(ALICE, [message], 10)
    assert await stores.offline.pop_all(ALICE) == [message]


async def test_concurrent_deliveries_never_exceed_the_limit(stores: Stores) -> None:
    import asyncio

    await stores.offline.store(ALICE, [msg(0)], max_per_user=5)
    stored = await asyncio.gather(
        *(stores.offline.store(ALICE, [msg(n)], max_per_user=5) for n in range(1, 21))
    )
    assert sum(stored) == 4
    assert await stores.offline.count(ALICE) == 5


async def test_popping_an_empty_sql_queue_is_one_read_without_a_transaction() -> None:
    from meerkat.stores.offline_sql import SqlOfflineStore

    class OneRead:
        """Records reads; a transaction (BEGIN IMMEDIATE on SQLite) would fail the test."""

        def __init__(self) -> None:
            self.reads: list[tuple[object, ...]] = []

        async def fetchall(self, sql: object, *params: object) -> list[tuple[object, ...]]:
            self.reads.append(params)
            return []

        def transaction(self) -> object:
            raise AssertionError("an empty queue needs no transaction")

    db = OneRead()
    assert await SqlOfflineStore(db).pop_all(ALICE) == []  # type: ignore[arg-type]
    assert db.reads == [("localhost", "alice")]
