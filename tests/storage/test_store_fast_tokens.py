"""FastTokenStore contract (XEP-0484 token slots) on memory, SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from meerkat.db import Database
from meerkat.stores.fast_tokens import ClientTokens, FastTokenStore, MemoryFastTokenStore, TokenSlot
from meerkat.stores.fast_tokens_sql import SqlFastTokenStore
from meerkat.stores.types import UserKey

ALICE = UserKey("localhost", "alice")
BOB = UserKey("localhost", "bob")
PHONE = "d4565fa7-4d72-4749-b3d3-740edbf87770"
LAPTOP = "0f5c2a1e-0000-4000-8000-000000000001"


def slot(n: int, mechanism: str = "HT-SHA-256-NONE") -> TokenSlot:
    return TokenSlot(key=bytes([n]) * 32, mechanism=mechanism, expire=1_900_000_000 + n, count=0)


@pytest.fixture
async def store(backend: str, make_database: Callable[..., Awaitable[Database]]) -> FastTokenStore:
    if backend == "memory":
        return MemoryFastTokenStore()
    return SqlFastTokenStore(await make_database(backend))


async def test_a_client_without_tokens_has_two_empty_slots(store: FastTokenStore) -> None:
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(None, None)


async def test_a_new_token_waits_in_the_new_slot_until_it_is_used(store: FastTokenStore) -> None:
    await store.set_new(ALICE, PHONE, slot(1))
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(None, slot(1))
    await store.promote_new(ALICE, PHONE)
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(slot(1), None)


async def test_rotation_keeps_the_current_token_until_the_next_one_is_used(
    store: FastTokenStore,
) -> None:
    await store.set_new(ALICE, PHONE, slot(1))
    await store.promote_new(ALICE, PHONE)
    await store.set_new(ALICE, PHONE, slot(2))
    await store.set_new(ALICE, PHONE, slot(3, "HT-SHA-256-ENDP"))  # replaces the unused one
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(slot(1), slot(3, "HT-SHA-256-ENDP"))
    await store.promote_new(ALICE, PHONE)
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(slot(3, "HT-SHA-256-ENDP"), None)
    await store.promote_new(ALICE, PHONE)  # nothing new: no change
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens(slot(3, "HT-SHA-256-ENDP"), None)


async def test_clients_and_users_are_separate_and_removed_separately(
    store: FastTokenStore,
) -> None:
    await store.set_new(ALICE, PHONE, slot(1))
    await store.set_new(ALICE, LAPTOP, slot(2))
    await store.set_new(BOB, PHONE, slot(3))
    await store.remove_client(ALICE, PHONE)
    assert await store.get_tokens(ALICE, PHONE) == ClientTokens()
    assert await store.get_tokens(ALICE, LAPTOP) == ClientTokens(None, slot(2))
    await store.remove_user(ALICE)
    assert await store.get_tokens(ALICE, LAPTOP) == ClientTokens()
    assert await store.get_tokens(BOB, PHONE) == ClientTokens(None, slot(3))


async def test_a_schema_1_database_migrates_to_one_that_stores_tokens(database: Database) -> None:
    await database.execute("DROP TABLE fast_auth_token")
    await database.execute("DELETE FROM schema_version")
    await database.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (1, 'old', 0)"
    )
    assert await database.migrate() == [2]
    await database.check_schema()
    sql = SqlFastTokenStore(database)
    await sql.set_new(ALICE, PHONE, slot(7))
    assert await sql.get_tokens(ALICE, PHONE) == ClientTokens(None, slot(7))
