"""mod_presence: RFC 6121 §4 broadcast, probes, directed presence and unavailable on disconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Client, Server, assert_xml

MODULES = {"mod_roster": None, "mod_presence": None}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start(MODULES)
    yield s
    await s.stop()


async def befriend(a: Client, b: Client) -> None:
    """Mutual subscription ("both"), then forget the traffic."""
    a_bare, b_bare = str(a.jid.bare), str(b.jid.bare)
    await a.say(f'<presence to="{b_bare}" type="subscribe"/>')
    await b.say(f'<presence to="{a_bare}" type="subscribed"/>')
    await b.say(f'<presence to="{a_bare}" type="subscribe"/>')
    await a.say(f'<presence to="{b_bare}" type="subscribed"/>')
    a.take()
    b.take()


async def test_initial_presence_is_broadcast_and_probes_bring_the_contacts_presence(
    server: Server,
) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob", "pc")
    await befriend(alice, bob)
    await alice.disconnect()
    bob.take()

    alice2 = await server.connect("alice", "phone")
    await alice2.say("<presence><show>away</show></presence>")
    assert_xml(
        bob.take(),
        ['<presence from="alice@localhost/phone" to="bob@localhost"><show>away</show></presence>'],
    )
    assert_xml(
        alice2.take(),
        [
            '<presence from="alice@localhost/phone" to="alice@localhost"><show>away</show>'
            "</presence>",
            '<presence from="bob@localhost/pc" to="alice@localhost/phone"/>',
        ],
    )


async def test_presence_updates_are_broadcast_without_probing_again(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await befriend(alice, bob)
    await alice.say("<presence><status>busy</status></presence>")
    assert_xml(
        bob.take(),
        [
            '<presence from="alice@localhost/res" to="bob@localhost"><status>busy</status>'
            "</presence>"
        ],
    )
    assert_xml(
        alice.take(),
        [
            '<presence from="alice@localhost/res" to="alice@localhost"><status>busy</status>'
            "</presence>"
        ],
    )


async def test_presence_goes_only_to_contacts_subscribed_to_it(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    carol = await server.login("carol")
    # Bob subscribes to Alice (Alice: from); Alice asks Carol but Carol does not answer.
    await bob.say('<presence to="alice@localhost" type="subscribe"/>')
    await alice.say('<presence to="bob@localhost" type="subscribed"/>')
    await alice.say('<presence to="carol@localhost" type="subscribe"/>')
    for c in (alice, bob, carol):
        c.take()
    await alice.say("<presence/>")
    assert_xml(bob.take(), ['<presence from="alice@localhost/res" to="bob@localhost"/>'])
    assert carol.take() == []


async def test_a_new_resource_sees_the_users_other_resources(server: Server) -> None:
    phone = await server.login("alice", "phone")
    laptop = await server.connect("alice", "laptop")
    await laptop.say("<presence/>")
    assert_xml(phone.take(), ['<presence from="alice@localhost/laptop" to="alice@localhost"/>'])
    assert_xml(
        laptop.take(),
        [
            '<presence from="alice@localhost/laptop" to="alice@localhost"/>',
            '<presence from="alice@localhost/phone" to="alice@localhost/laptop"/>',
        ],
    )


async def test_probes_are_answered_only_for_subscribed_contacts(server: Server) -> None:
    alice = await server.login("alice")
    mallory = await server.login("mallory")
    await server.route('<presence type="probe" from="mallory@localhost/res" to="alice@localhost"/>')
    assert mallory.take() == []
    assert alice.take() == []


async def test_a_probe_for_an_offline_contact_is_answered_unavailable(server: Server) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await befriend(alice, bob)
    await bob.disconnect()
    alice.take()
    await server.route('<presence type="probe" from="alice@localhost/res" to="bob@localhost"/>')
    assert_xml(
        alice.take(),
        ['<presence from="bob@localhost" to="alice@localhost/res" type="unavailable"/>'],
    )


async def test_unavailable_presence_is_broadcast_to_contacts_and_other_resources(
    server: Server,
) -> None:
    alice = await server.login("alice")
    laptop = await server.login("alice", "laptop")
    bob = await server.login("bob")
    await befriend(alice, bob)
    laptop.take()
    await alice.say('<presence type="unavailable"><status>bye</status></presence>')
    bye = (
        '<presence from="alice@localhost/res" to="{}" type="unavailable">'
        "<status>bye</status></presence>"
    )
    assert_xml(bob.take(), [bye.format("bob@localhost")])
    assert_xml(laptop.take(), [bye.format("alice@localhost")])
    assert not alice.available


async def test_disconnecting_while_available_broadcasts_unavailable(server: Server) -> None:
    alice = await server.login("alice")
    laptop = await server.login("alice", "laptop")
    bob = await server.login("bob")
    await befriend(alice, bob)
    laptop.take()
    await alice.disconnect()
    assert_xml(
        bob.take(), ['<presence from="alice@localhost/res" to="bob@localhost" type="unavailable"/>']
    )
    assert_xml(
        laptop.take(),
        ['<presence from="alice@localhost/res" to="alice@localhost" type="unavailable"/>'],
    )


async def test_directed_presence_targets_get_unavailable_when_the_user_leaves(
    server: Server,
) -> None:
    alice = await server.login("alice")
    carol = await server.login("carol")
    await alice.say('<presence to="carol@localhost/res"><show>chat</show></presence>')
    assert_xml(
        carol.take(),
        [
            '<presence from="alice@localhost/res" to="carol@localhost/res"><show>chat</show>'
            "</presence>"
        ],
    )
    await alice.disconnect()
    assert_xml(
        carol.take(),
        ['<presence from="alice@localhost/res" to="carol@localhost/res" type="unavailable"/>'],
    )


async def test_directed_unavailable_ends_the_tracking(server: Server) -> None:
    alice = await server.login("alice")
    carol = await server.login("carol")
    await alice.say('<presence to="carol@localhost"/>')
    await alice.say('<presence to="carol@localhost" type="unavailable"/>')
    carol.take()
    await alice.say('<presence type="unavailable"/>')
    assert carol.take() == []


async def test_subscription_presence_without_mod_roster_is_routed_to_the_bare_jid() -> None:
    server = Server()
    await server.start({"mod_presence": None})
    try:
        alice = await server.login("alice")
        bob = await server.login("bob")
        await alice.say('<presence to="bob@localhost/res" type="subscribe"/>')
        assert_xml(
            bob.take(), ['<presence from="alice@localhost" to="bob@localhost" type="subscribe"/>']
        )
    finally:
        await server.stop()


def count_roster_reads(server: Server) -> list[object]:
    """Wrap the roster store's `get_roster`; the returned list gets the user of each read."""
    reads: list[object] = []
    store = server.stores.roster
    get_roster = store.get_roster

    async def counting(user: object) -> object:
        reads.append(user)
        return await get_roster(user)  # type: ignore[arg-type]

    store.get_roster = counting  # type: ignore[method-assign]
    return reads


async def test_an_initial_presence_reads_the_roster_once_and_redelivers_pending_requests(
    server: Server,
) -> None:
    bob = await server.login("bob")
    alice = await server.connect("alice")  # bound, not available: the request waits
    await bob.say('<presence to="alice@localhost" type="subscribe"><status>hi</status></presence>')
    alice.take()
    reads = count_roster_reads(server)
    await alice.say("<presence/>")
    assert len(reads) == 1  # subscription lists and the pending requests share one read
    assert_xml(
        [el for el in alice.take() if el.attrs.get("type") == "subscribe"],
        [
            '<presence from="bob@localhost" to="alice@localhost/res" type="subscribe">'
            "<status>hi</status></presence>"
        ],
    )


async def test_a_logout_reuses_the_subscription_lists_of_the_initial_presence(
    server: Server,
) -> None:
    alice = await server.connect("alice")
    bob = await server.login("bob")
    await befriend(alice, bob)
    await alice.say("<presence/>")
    bob.take()
    reads = count_roster_reads(server)
    await alice.disconnect()
    assert reads == []  # no roster change since the initial presence: nothing to read
    assert_xml(
        bob.take(), ['<presence from="alice@localhost/res" to="bob@localhost" type="unavailable"/>']
    )


async def test_a_roster_push_makes_the_logout_read_the_subscription_lists_again(
    server: Server,
) -> None:
    alice = await server.login("alice")  # initial presence: an empty roster is kept
    bob = await server.login("bob")
    await befriend(alice, bob)  # pushed to alice's session: what was kept is stale
    await alice.disconnect()
    assert_xml(
        bob.take(), ['<presence from="alice@localhost/res" to="bob@localhost" type="unavailable"/>']
    )
