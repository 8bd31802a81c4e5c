"""mod_offline: XEP-0160 storage while the user is away, redelivery with XEP-0203 delay stamps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kernel_harness import Server, assert_xml

from meerkat.core.hooks import RESEND_OFFLINE_MESSAGES
from meerkat.modules.offline import OfflineConfig
from meerkat.stores import UserKey
from meerkat.xmpp.errors import error_condition
from meerkat.xmpp.jid import Jid

USER = UserKey("localhost", "bob")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start(
        {
            "mod_roster": None,
            "mod_presence": None,
            "mod_offline": OfflineConfig(max_user_offline_messages=2),
        }
    )
    yield s
    await s.stop()


async def test_offline_message_is_delivered_after_login_with_a_delay_stamp(server: Server) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say('<message to="bob@localhost" type="chat" id="m1"><body>one</body></message>')
    server.clock.advance(10)
    await alice.say('<message to="bob@localhost" id="m2"><body>two</body></message>')
    assert alice.take() == []
    assert await server.stores.offline.count(USER) == 2

    server.clock.advance(50)
    bob = await server.connect("bob")
    await bob.say("<presence/>")
    assert_xml(
        bob.take(),
        [
            '<presence from="bob@localhost/res" to="bob@localhost"/>',
            '<message from="alice@localhost/res" to="bob@localhost" type="chat" id="m1">'
            "<body>one</body>"
            '<delay xmlns="urn:xmpp:delay" from="localhost" stamp="2027-01-15T08:00:00.000000Z">'
            "Offline Storage</delay></message>",
            '<message from="alice@localhost/res" to="bob@localhost" id="m2"><body>two</body>'
            '<delay xmlns="urn:xmpp:delay" from="localhost" stamp="2027-01-15T08:00:10.000000Z">'
            "Offline Storage</delay></message>",
        ],
    )
    assert await server.stores.offline.count(USER) == 0


async def test_messages_over_the_limit_are_bounced_with_resource_constraint(
    server: Server,
) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    for i in range(3):
        await alice.say(f'<message to="bob@localhost" id="m{i}"><body>{i}</body></message>')
    [bounce] = alice.take()
    assert bounce.attrs["id"] == "m2" and bounce.attrs["type"] == "error"
    assert error_condition(bounce) == "resource-constraint"
    assert await server.stores.offline.count(USER) == 2


async def test_no_store_hint_is_honoured_and_store_hint_keeps_a_bodiless_message(
    server: Server,
) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say(
        '<message to="bob@localhost" id="a"><body>x</body><no-store xmlns="urn:xmpp:hints"/>'
        "</message>"
    )
    [bounce] = alice.take()
    assert error_condition(bounce) == "service-unavailable"
    await alice.say(
        '<message to="bob@localhost" id="b">'
        '<active xmlns="http://jabber.org/protocol/chatstates"/></message>'
    )
    assert alice.take() == []  # a chat state to nobody: silently dropped
    await alice.say(
        '<message to="bob@localhost" id="c"><x xmlns="urn:example"/>'
        '<store xmlns="urn:xmpp:hints"/></message>'
    )
    assert alice.take() == []
    assert await server.stores.offline.count(USER) == 1


async def test_headlines_and_groupchat_are_not_stored(server: Server) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say('<message to="bob@localhost" type="headline"><body>x</body></message>')
    await alice.say('<message to="bob@localhost" type="groupchat"><body>x</body></message>')
    assert await server.stores.offline.count(USER) == 0


async def test_messages_go_back_to_the_store_when_the_session_vanished(server: Server) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say('<message to="bob@localhost"><body>hello</body></message>')
    bob = await server.connect("bob")
    await server.sessions.close(bob.record)  # gone before the messages could be handed over
    await server.hooks.run(RESEND_OFFLINE_MESSAGES, "localhost", None, {"session": bob})
    assert bob.take() == []
    assert await server.stores.offline.count(USER) == 1


async def test_removing_the_account_drops_its_offline_messages(server: Server) -> None:
    alice = await server.login("alice")
    await server.register("bob")
    await alice.say('<message to="bob@localhost"><body>hello</body></message>')
    await server.accounts.remove(Jid("bob", "localhost"))
    assert await server.stores.offline.count(USER) == 0
