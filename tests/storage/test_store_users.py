"""UserStore contract: memory, sqlite, pgsql, mysql behave the same."""

from __future__ import annotations

import asyncio

import pytest
from storage_payloads import EMOJI, INJECTION, QUOTES

from meerkat.stores import Stores

SCRAM = (
    "==MULTI_SCRAM==,4096,===SHA1===c2FsdA==|c3RvcmVk|c2VydmVy,==SHA256==c2FsdA==|c3RvcmVk|c2VydmVy"
)


async def test_created_user_exists_and_has_its_password_record(stores: Stores) -> None:
    assert await stores.users.create_user("localhost", "alice", SCRAM) is True
    assert await stores.users.user_exists("localhost", "alice")
    assert await stores.users.get_password("localhost", "alice") == SCRAM


async def test_plain_password_records_round_trip(stores: Stores) -> None:
    await stores.users.create_user("localhost", "bob", "secret'; --")
    assert await stores.users.get_password("localhost", "bob") == "secret'; --"


async def test_creating_an_existing_user_returns_false_and_keeps_the_password(
    stores: Stores,
) -> None:
    await stores.users.create_user("localhost", "alice", "one")
    assert await stores.users.create_user("localhost", "alice", "two") is False
    assert await stores.users.get_password("localhost", "alice") == "one"


async def test_unknown_user_has_no_password_and_does_not_exist(stores: Stores) -> None:
    assert await stores.users.get_password("localhost", "nobody") is None
    assert not await stores.users.user_exists("localhost", "nobody")
    assert await stores.users.set_password("localhost", "nobody", "x") is False
    assert await stores.users.remove_user("localhost", "nobody") is False


async def test_set_password_replaces_the_record(stores: Stores) -> None:
    await stores.users.create_user("localhost", "alice", "plain")
    assert await stores.users.set_password("localhost", "alice", SCRAM) is True
    assert await stores.users.get_password("localhost", "alice") == SCRAM
    assert await stores.users.set_password("localhost", "alice", SCRAM) is True  # unchanged
    assert await stores.users.set_password("localhost", "alice", "plain2") is True
    assert await stores.users.get_password("localhost", "alice") == "plain2"


async def test_removed_user_is_gone(stores: Stores) -> None:
    await stores.users.create_user("localhost", "alice", "x")
    assert await stores.users.remove_user("localhost", "alice") is True
    assert not await stores.users.user_exists("localhost", "alice")
    assert await stores.users.create_user("localhost", "alice", "y") is True


async def test_users_are_listed_sorted_and_counted_per_server(stores: Stores) -> None:
    for name in ["zed", "alice", "émile", "bob", "Ωmega"]:
        await stores.users.create_user("a.example", name, "x")
    await stores.users.create_user("b.example", "carol", "x")
    assert await stores.users.list_users("a.example") == sorted(
        ["zed", "alice", "émile", "bob", "Ωmega"]
    )
    assert await stores.users.count_users("a.example") == 5
    assert await stores.users.list_users("b.example") == ["carol"]
    assert await stores.users.list_users("c.example") == []
    assert await stores.users.count_users("c.example") == 0


@pytest.mark.parametrize("name", [EMOJI, QUOTES, INJECTION, "ß", "ss", "a" * 250])
async def test_odd_usernames_are_distinct_keys(stores: Stores, name: str) -> None:
    assert await stores.users.create_user("localhost", name, name)
    assert await stores.users.get_password("localhost", name) == name
    assert await stores.users.list_users("localhost") == [name]
    assert await stores.users.get_password("localhost", name.upper() + "x") is None
    assert await stores.users.count_users("localhost") == 1


async def test_emoji_usernames_are_not_confused_with_each_other(stores: Stores) -> None:
    assert await stores.users.create_user("localhost", "🦦", "otter")
    assert await stores.users.create_user("localhost", "🐱", "cat")
    assert await stores.users.get_password("localhost", "🦦") == "otter"
    assert await stores.users.get_password("localhost", "🐱") == "cat"


async def test_concurrent_creation_of_one_name_succeeds_exactly_once(stores: Stores) -> None:
    results = await asyncio.gather(
        *(stores.users.create_user("localhost", "race", f"pw{i}") for i in range(20))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await stores.users.get_password("localhost", "race") == f"pw{winner}"
    assert await stores.users.count_users("localhost") == 1
