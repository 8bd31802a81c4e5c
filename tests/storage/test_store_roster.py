"""RosterStore contract."""

from __future__ import annotations

import pytest
from storage_payloads import BIG, TEXTS

from meerkat.stores import RosterItem, Stores, UserKey

ALICE = UserKey("localhost", "alice")
BOB = UserKey("localhost", "bob")


async def test_a_new_user_has_an_empty_roster_and_no_version(stores: Stores) -> None:
    assert await stores.roster.get_roster(ALICE) == []
    assert await stores.roster.get_item(ALICE, "bob@localhost") is None
    assert await stores.roster.get_version(ALICE) is None


async def test_set_item_stores_every_field(stores: Stores) -> None:
    item = RosterItem(
        jid="bob@localhost",
        name="Bob 🦦",
        subscription="both",
        ask="out",
        groups=("Friends", "Work"),
        approved=True,
        askmessage="let me in",
    )
    await stores.roster.set_item(ALICE, item)
    assert await stores.roster.get_item(ALICE, "bob@localhost") == item
    assert await stores.roster.get_roster(ALICE) == [item]


@pytest.mark.parametrize("subscription", ["none", "to", "from", "both"])
@pytest.mark.parametrize("ask", ["none", "out", "in", "both"])
async def test_every_subscription_and_ask_state_round_trips(
    stores: Stores, subscription: str, ask: str
) -> None:
    item = RosterItem("bob@localhost", subscription=subscription, ask=ask)  # type: ignore[arg-type]
    await stores.roster.set_item(ALICE, item)
    assert await stores.roster.get_item(ALICE, "bob@localhost") == item


async def test_set_item_replaces_the_item_and_its_groups(stores: Stores) -> None:
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost", "B", groups=("a", "b")))
    new = RosterItem("bob@localhost", "Bobby", subscription="to", groups=("c",))
    await stores.roster.set_item(ALICE, new)
    assert await stores.roster.get_roster(ALICE) == [new]


async def test_duplicate_groups_are_stored_once(stores: Stores) -> None:
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost", groups=("a", "b", "a")))
    item = await stores.roster.get_item(ALICE, "bob@localhost")
    assert item is not None
    assert sorted(item.groups) == ["a", "b"]


async def test_roster_is_sorted_by_jid_and_private_to_its_user(stores: Stores) -> None:
    for jid in ["zoe@x", "adam@x", "mike@y"]:
        await stores.roster.set_item(ALICE, RosterItem(jid, groups=(jid,)))
    await stores.roster.set_item(BOB, RosterItem("alice@localhost"))
    assert [i.jid for i in await stores.roster.get_roster(ALICE)] == ["adam@x", "mike@y", "zoe@x"]
    assert [i.groups for i in await stores.roster.get_roster(ALICE)] == [
        ("adam@x",),
        ("mike@y",),
        ("zoe@x",),
    ]
    assert [i.jid for i in await stores.roster.get_roster(BOB)] == ["alice@localhost"]


async def test_remove_item_deletes_it_and_reports_whether_it_existed(stores: Stores) -> None:
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost", groups=("g",)))
    assert await stores.roster.remove_item(ALICE, "bob@localhost") is True
    assert await stores.roster.remove_item(ALICE, "bob@localhost") is False
    assert await stores.roster.get_roster(ALICE) == []
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost"))
    assert (await stores.roster.get_item(ALICE, "bob@localhost")) == RosterItem("bob@localhost")


async def test_item_and_version_are_written_together(stores: Stores) -> None:
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost"), version="v1")
    assert await stores.roster.get_version(ALICE) == "v1"
    await stores.roster.remove_item(ALICE, "bob@localhost", version="v2")
    assert await stores.roster.get_version(ALICE) == "v2"
    await stores.roster.set_version(ALICE, "v3")
    assert await stores.roster.get_version(ALICE) == "v3"
    await stores.roster.set_item(ALICE, RosterItem("carol@localhost"))
    assert await stores.roster.get_version(ALICE) == "v3"


async def test_remove_user_forgets_items_groups_and_version(stores: Stores) -> None:
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost", groups=("g",)), "v1")
    await stores.roster.set_item(BOB, RosterItem("alice@localhost"), "w1")
    await stores.roster.remove_user(ALICE)
    assert await stores.roster.get_roster(ALICE) == []
    assert await stores.roster.get_version(ALICE) is None
    assert await stores.roster.get_version(BOB) == "w1"
    await stores.roster.set_item(ALICE, RosterItem("bob@localhost"))
    assert (await stores.roster.get_item(ALICE, "bob@localhost")) == RosterItem("bob@localhost")


@pytest.mark.parametrize("text", [*TEXTS, BIG])
async def test_names_groups_and_messages_round_trip_any_text(stores: Stores, text: str) -> None:
    item = RosterItem("bob@localhost", name=text, groups=(text or "g",), askmessage=text)
    await stores.roster.set_item(ALICE, item, version=text)
    assert await stores.roster.get_item(ALICE, "bob@localhost") == item
    assert await stores.roster.get_version(ALICE) == text


async def test_contact_jids_are_exact_keys(stores: Stores) -> None:
    jids = ["bob@localhost", "Bob@localhost", "🦦@localhost", "o'reilly@x", "x'); --@y"]
    for jid in jids:
        await stores.roster.set_item(ALICE, RosterItem(jid, name=jid))
    assert sorted(i.jid for i in await stores.roster.get_roster(ALICE)) == sorted(jids)
    for jid in jids:
        item = await stores.roster.get_item(ALICE, jid)
        assert item is not None and item.name == jid
