"""mod_last: XEP-0012 - server uptime, and when a contact was last available."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Client, Server, assert_same, payload

from meerkat.stores import UserKey
from meerkat.xmpp.errors import error_condition

LAST = 'xmlns="jabber:iq:last"'


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start({"mod_roster": None, "mod_presence": None, "mod_last": None})
    yield s
    await s.stop()


async def befriend(a: Client, b: Client) -> None:
    await a.say(f'<presence to="{b.jid.bare}" type="subscribe"/>')
    await b.say(f'<presence to="{a.jid.bare}" type="subscribed"/>')
    a.take()
    b.take()


async def test_the_server_answers_its_uptime(server: Server) -> None:
    server.clock.advance(42)
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="localhost"><query {LAST}/></iq>')
    assert_same(payload(reply), f'<query {LAST} seconds="42"/>')


async def test_an_online_contact_answers_zero_and_an_offline_one_the_time_since_logout(
    server: Server,
) -> None:
    alice = await server.login("alice")
    bob = await server.login("bob")
    await befriend(alice, bob)
    reply = await alice.iq(f'<iq type="get" to="bob@localhost"><query {LAST}/></iq>')
    assert_same(payload(reply), f'<query {LAST} seconds="0"/>')
    await bob.say('<presence type="unavailable"><status>gone fishing</status></presence>')
    await bob.disconnect()
    server.clock.advance(90)
    reply = await alice.iq(f'<iq type="get" to="bob@localhost"><query {LAST}/></iq>')
    assert_same(payload(reply), f'<query {LAST} seconds="90">gone fishing</query>')


async def test_a_disconnect_records_the_last_logout(server: Server) -> None:
    bob = await server.login("bob")
    await bob.disconnect()
    assert await server.stores.last.get_last(UserKey("localhost", "bob")) == (1_800_000_000, "")


async def test_strangers_may_not_know_when_a_user_was_last_seen(server: Server) -> None:
    await server.register("bob")
    alice = await server.login("alice")
    reply = await alice.iq(f'<iq type="get" to="bob@localhost"><query {LAST}/></iq>')
    assert error_condition(reply) == "forbidden"


async def test_removing_the_account_forgets_its_last_activity(server: Server) -> None:
    bob = await server.login("bob")
    await bob.disconnect()
    await server.accounts.remove(bob.jid.bare)
    assert await server.stores.last.get_last(UserKey("localhost", "bob")) is None
