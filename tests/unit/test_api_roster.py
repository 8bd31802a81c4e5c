"""Admin API category `roster` with the real mod_roster on an in-process kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_api_support import FakeSession, Kernel

from meerkat.api import ApiError, roster
from meerkat.xmpp.jid import Jid

ALICE, BOB = Jid.parse("alice@localhost"), Jid.parse("bob@localhost")


@pytest.fixture
async def kernel() -> AsyncIterator[Kernel]:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    await kernel.start_modules("mod_roster")
    yield kernel
    await kernel.stop_modules()


def pushes(session: FakeSession) -> list[str]:
    return [str(acc.element) for acc in session.delivered if acc.element.attrs.get("type") == "set"]


async def test_add_contact_stores_it_and_pushes_to_online_resources(kernel: Kernel) -> None:
    phone = await kernel.login("alice@localhost/phone")
    result = await roster.add_contact(kernel.ctx, ALICE, BOB, "Bobby", ["Friends"])
    assert result == "Contact added successfully"
    assert await roster.list_contacts(kernel.ctx, ALICE) == [
        {
            "jid": "bob@localhost",
            "name": "Bobby",
            "groups": ["Friends"],
            "subscription": "NONE",
            "ask": "NONE",
        }
    ]
    [push] = pushes(phone)
    assert "bob@localhost" in push and "Friends" in push


async def test_contacts_must_be_existing_users(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await roster.add_contact(kernel.ctx, ALICE, Jid.parse("nobody@localhost"), None, None)
    assert (info.value.code, info.value.message) == (
        "user_not_exist",
        "The user nobody@localhost does not exist",
    )
    with pytest.raises(ApiError) as info:
        await roster.list_contacts(kernel.ctx, Jid.parse("a@elsewhere.org"))
    assert (info.value.code, info.value.message) == ("unknown_domain", "Domain not found")


async def test_get_and_delete_contact(kernel: Kernel) -> None:
    await roster.add_contact(kernel.ctx, ALICE, BOB, None, None)
    assert (await roster.get_contact(kernel.ctx, ALICE, BOB))["jid"] == "bob@localhost"
    assert await roster.delete_contact(kernel.ctx, ALICE, BOB) == (
        "Contact bob@localhost deleted successfully"
    )
    with pytest.raises(ApiError) as info:
        await roster.get_contact(kernel.ctx, ALICE, BOB)
    assert (info.value.code, info.value.message) == (
        "contact_not_found",
        "Given contact does not exist",
    )
    with pytest.raises(ApiError) as info:
        await roster.delete_contact(kernel.ctx, ALICE, BOB)
    assert (info.value.code, info.value.message) == (
        "contact_not_found",
        "Cannot remove bob@localhost contact that does not exist",
    )


async def test_subscription_invite_goes_through_the_roster(kernel: Kernel) -> None:
    bob = await kernel.login("bob@localhost/pc")
    result = await roster.subscription(kernel.ctx, ALICE, BOB, "INVITE")
    assert result == "Subscription stanza with type subscribe sent successfully"
    contact = await roster.get_contact(kernel.ctx, ALICE, BOB)
    assert (contact["subscription"], contact["ask"]) == ("NONE", "OUT")
    assert any(acc.element.attrs.get("type") == "subscribe" for acc in bob.delivered)


async def test_mutual_subscription_connect_and_disconnect(kernel: Kernel) -> None:
    result = await roster.set_mutual_subscription(kernel.ctx, ALICE, BOB, "CONNECT")
    assert result == (
        "Subscription between users alice@localhost and bob@localhost created successfully"
    )
    for user, other in ((ALICE, BOB), (BOB, ALICE)):
        contact = await roster.get_contact(kernel.ctx, user, other)
        assert (contact["subscription"], contact["ask"]) == ("BOTH", "NONE")
    result = await roster.set_mutual_subscription(kernel.ctx, ALICE, BOB, "DISCONNECT")
    assert result == "Mutual subscription removed successfully"
    assert await roster.list_contacts(kernel.ctx, ALICE) == []
    assert await roster.list_contacts(kernel.ctx, BOB) == []


async def test_batch_operations_report_each_item(kernel: Kernel) -> None:
    await kernel.user("carol@localhost")
    carol = Jid.parse("carol@localhost")
    nobody = Jid.parse("nobody@localhost")
    results = await roster.add_contacts(
        kernel.ctx,
        ALICE,
        [{"jid": BOB, "name": "B", "groups": None}, {"jid": nobody, "name": "N"}],
    )
    assert results[0] == "Contact added successfully"
    assert isinstance(results[1], ApiError) and results[1].code == "user_not_exist"
    everyone = [{"jid": j, "name": ""} for j in (ALICE, BOB, carol)]
    results = await roster.subscribe_all_to_all(kernel.ctx, everyone)
    assert len(results) == 3 and all(isinstance(r, str) for r in results)
    assert len(await roster.list_contacts(kernel.ctx, carol)) == 2
    results = await roster.delete_contacts(kernel.ctx, ALICE, [BOB, nobody])
    assert results[0] == "Contact bob@localhost deleted successfully"
    assert isinstance(results[1], ApiError) and results[1].code == "contact_not_found"


async def test_without_mod_roster_it_is_deps_not_loaded() -> None:
    kernel = Kernel()
    kernel.ctx.modules = []
    with pytest.raises(ApiError) as info:
        await roster.list_contacts(kernel.ctx, ALICE)
    assert info.value.code == "deps_not_loaded"
