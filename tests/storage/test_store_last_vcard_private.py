"""LastStore, VcardStore and PrivateStore contracts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from storage_payloads import BIG, TEXTS, XML_PAYLOADS

from meerkat.db import Database, Query
from meerkat.stores import Stores, UserKey, sql_stores

ALICE = UserKey("localhost", "alice")
BOB = UserKey("localhost", "bob")
CAROL = UserKey("other.example", "carol")
XML_IDS = ["emoji", "quotes", "sql", "nul", "big"]


async def test_last_activity_is_recorded_and_replaced(stores: Stores) -> None:
    assert await stores.last.get_last(ALICE) is None
    await stores.last.set_last(ALICE, 1_700_000_000, "gone fishing")
    assert await stores.last.get_last(ALICE) == (1_700_000_000, "gone fishing")
    await stores.last.set_last(ALICE, 1_800_000_000, "")
    assert await stores.last.get_last(ALICE) == (1_800_000_000, "")
    await stores.last.remove_user(ALICE)
    assert await stores.last.get_last(ALICE) is None


async def test_concurrent_last_activity_writes_keep_each_users_newest(stores: Stores) -> None:
    users = [UserKey("localhost", f"user{i}") for i in range(80)]
    writes = [stores.last.set_last(u, 1_000 + i, f"s{i}") for i, u in enumerate(users)]
    writes += [stores.last.set_last(u, 5_000 + i, "later") for i, u in enumerate(users[:10])]
    await asyncio.gather(*writes)
    for i, user in enumerate(users):
        want = (5_000 + i, "later") if i < 10 else (1_000 + i, f"s{i}")
        assert await stores.last.get_last(user) == want
    assert await stores.last.count_active("localhost", 0) == 80


async def test_concurrent_last_activity_writes_share_statements(
    make_database: Callable[..., Awaitable[Database]],
) -> None:
    db = await make_database("sqlite")
    statements: list[object] = []
    execute = db.execute

    async def counting(sql: Query, *params: object) -> int:
        statements.append(sql)
        return await execute(sql, *params)

    db.execute = counting  # type: ignore[method-assign]
    last = sql_stores(db).last
    await last.set_last(ALICE, 1, "alone")  # nobody waiting: written at once, by itself
    assert len(statements) == 1
    await asyncio.gather(*(last.set_last(UserKey("localhost", f"u{i}"), i, "") for i in range(40)))
    assert 2 <= len(statements) <= 3  # the first write, then batches of at most 100 rows
    assert await last.count_active("localhost", 0) == 41


async def test_last_seconds_beyond_2038_are_kept(stores: Stores) -> None:
    await stores.last.set_last(ALICE, 2**33, "future")
    assert await stores.last.get_last(ALICE) == (2**33, "future")


@pytest.mark.parametrize("status", [*TEXTS, BIG])
async def test_last_status_round_trips_any_text(stores: Stores, status: str) -> None:
    await stores.last.set_last(ALICE, 5, status)
    assert await stores.last.get_last(ALICE) == (5, status)


async def test_active_users_are_counted_and_old_ones_listed_per_server(stores: Stores) -> None:
    await stores.last.set_last(ALICE, 100, "")
    await stores.last.set_last(BOB, 300, "")
    await stores.last.set_last(UserKey("localhost", "dave"), 50, "")
    await stores.last.set_last(CAROL, 10, "")
    assert await stores.last.count_active("localhost", since=100) == 2
    assert await stores.last.count_active("localhost", since=301) == 0
    assert await stores.last.list_old("localhost", before=300) == ["alice", "dave"]
    assert await stores.last.list_old("other.example", before=300) == ["carol"]


async def test_vcard_is_stored_replaced_and_removed(stores: Stores) -> None:
    assert await stores.vcard.get_vcard(ALICE) is None
    await stores.vcard.set_vcard(ALICE, "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>")
    await stores.vcard.set_vcard(ALICE, "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>")
    await stores.vcard.set_vcard(BOB, "<vCard xmlns='vcard-temp'/>")
    assert await stores.vcard.get_vcard(ALICE) == "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>"
    await stores.vcard.remove_user(ALICE)
    assert await stores.vcard.get_vcard(ALICE) is None
    assert await stores.vcard.get_vcard(BOB) == "<vCard xmlns='vcard-temp'/>"


@pytest.mark.parametrize("xml", XML_PAYLOADS, ids=XML_IDS)
async def test_vcard_xml_round_trips_exactly(stores: Stores, xml: str) -> None:
    await stores.vcard.set_vcard(ALICE, xml)
    assert await stores.vcard.get_vcard(ALICE) == xml


async def test_private_data_is_kept_per_user_and_namespace(stores: Stores) -> None:
    assert await stores.private.get(ALICE, "storage:bookmarks") is None
    await stores.private.set_many(
        ALICE, {"storage:bookmarks": "<storage xmlns='storage:bookmarks'/>", "a:b": "<x/>"}
    )
    await stores.private.set_many(ALICE, {"a:b": "<y/>"})
    await stores.private.set_many(BOB, {"a:b": "<bob/>"})
    await stores.private.set_many(BOB, {})
    assert await stores.private.get(ALICE, "storage:bookmarks") == (
        "<storage xmlns='storage:bookmarks'/>"
    )
    assert await stores.private.get(ALICE, "a:b") == "<y/>"
    assert await stores.private.get(ALICE, "A:B") is None
    await stores.private.remove_user(ALICE)
    assert await stores.private.get(ALICE, "a:b") is None
    assert await stores.private.get(BOB, "a:b") == "<bob/>"


@pytest.mark.parametrize("xml", XML_PAYLOADS, ids=XML_IDS)
async def test_private_xml_round_trips_exactly(stores: Stores, xml: str) -> None:
    namespace = "urn:x-test:'quoted'; DROP TABLE private_storage; --🦦"
    await stores.private.set_many(ALICE, {namespace: xml})
    assert await stores.private.get(ALICE, namespace) == xml


async def test_removing_an_account_removes_everything_stored_about_it(stores: Stores) -> None:
    from meerkat.stores import OfflineMessage, RosterItem

    await stores.users.create_user("localhost", "alice", "pw")
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost"), "v1")
    await stores.offline.store(ALICE, [OfflineMessage(1, "b@x", "<message/>")], 10)
    await stores.last.set_last(ALICE, 1, "")
    await stores.vcard.set_vcard(ALICE, "<vCard/>")
    await stores.private.set_many(ALICE, {"a": "<a/>"})
    await stores.remove_user("localhost", "alice")
    assert not await stores.users.user_exists("localhost", "alice")
    assert await stores.roster.get_roster(ALICE) == []
    assert await stores.roster.get_version(ALICE) is None
    assert await stores.offline.count(ALICE) == 0
    assert await stores.last.get_last(ALICE) is None
    assert await stores.vcard.get_vcard(ALICE) is None
    assert await stores.private.get(ALICE, "a") is None
