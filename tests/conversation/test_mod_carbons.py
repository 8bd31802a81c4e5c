"""mod_carboncopy: XEP-0280 carbons between a user's resources, with exactly the XML each gets.

`C2SServer` / `C2SClient` extend the kernel harness with what the c2s does to stanzas routed
to a session: a mailbox consumed in order through USER_RECEIVE_PACKET and
XMPP_PRESEND_ELEMENT (`send_element`), and non-stanza elements through USER_SEND_XMLEL.
test_mod_csi.py uses them too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from kernel_harness import HOST, Client, Server, assert_same, assert_xml

from meerkat.core import Acc
from meerkat.core.hooks import (
    BIND2_ENABLE_FEATURES,
    BIND2_STREAM_FEATURES,
    SM_REGISTER_CONNECTION,
    USER_RECEIVE_PACKET,
    USER_SEND_XMLEL,
    XMPP_PRESEND_ELEMENT,
)
from meerkat.modules.carbons import Direction, eligible, unwrap
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import error_condition
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element

CARBONS = 'xmlns="urn:xmpp:carbons:2"'
FORWARD = 'xmlns="urn:xmpp:forward:0"'
ENABLE = f'<iq type="set" id="cc"><enable {CARBONS}/></iq>'


# -- a harness session that behaves like the c2s on the way out -------------------------------
class C2SClient(Client):
    """A fake c2s session with a mailbox: deliveries run the receive and pre-send hooks."""

    def __init__(self, server: Server, jid: Jid) -> None:
        super().__init__(server, jid)
        self.mailbox: list[Acc] = []

    def deliver(self, acc: Acc) -> bool:
        if not self.connected:
            return False
        self.mailbox.append(acc)  # the Acc itself, shared with other sessions, as in the c2s
        return True

    async def pump(self) -> bool:
        """Process the mailbox like C2SSession._on_routed; True if anything was there."""
        worked = bool(self.mailbox)
        while self.mailbox:
            acc = self.mailbox.pop(0)
            if await self.server.hooks.run(USER_RECEIVE_PACKET, HOST, acc, {"session": self}):
                continue
            await self.send_element(acc.element)
        return worked

    async def send_element(self, el: Element) -> None:
        """As C2SSession.send_element: the pre-send chain, then the socket (the inbox)."""
        if await self.server.hooks.run(XMPP_PRESEND_ELEMENT, HOST, el, {"session": self}):
            return
        self.send(el)

    async def say(self, xml: str | Element) -> None:
        await super().say(xml)
        await settle(self.server)

    async def nonza(self, xml: str) -> bool:
        """A top-level non-stanza element from the client; True when a module handled it."""
        handled = await self.server.hooks.run(
            USER_SEND_XMLEL, HOST, parse_element(xml), {"session": self}
        )
        await settle(self.server)
        return handled

    async def bind2(self, bind_xml: str) -> list[Element]:
        """Run BIND2_ENABLE_FEATURES for a Bind 2 request; return what goes into <bound/>."""
        results: list[Element] = []
        params = {"session": self, "results": results}
        await self.server.hooks.run(BIND2_ENABLE_FEATURES, HOST, parse_element(bind_xml), params)
        return results


class C2SServer(Server):
    async def connect(self, user: str, resource: str = "res") -> Client:
        jid = Jid(user, self.hosts[0], resource)
        if not await self.accounts.exists(jid.bare):
            await self.register(user)
        client = C2SClient(self, jid)
        await self.sessions.open(client.record, client)
        params = {"session": client, "jid": jid, "sid": client.sid}
        await self.hooks.run(SM_REGISTER_CONNECTION, jid.domain, None, params)
        self.clients.append(client)
        return client

    async def route(self, xml: str) -> None:
        await super().route(xml)
        await settle(self)


async def settle(server: Server) -> None:
    """Let every session consume its mailbox until nothing moves."""
    while True:
        moved = [await c.pump() for c in server.clients if isinstance(c, C2SClient)]
        if not any(moved):
            return


async def started(modules: Mapping[str, Any]) -> C2SServer:
    server = C2SServer()
    await server.start(modules)
    return server


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
async def server() -> AsyncIterator[C2SServer]:
    s = await started({"mod_presence": None, "mod_carboncopy": None, "mod_disco": None})
    yield s
    await s.stop()


async def online(server: Server, user: str, resource: str, priority: int = 0) -> C2SClient:
    client = await server.connect(user, resource)
    assert isinstance(client, C2SClient)
    await client.say(f"<presence><priority>{priority}</priority></presence>")
    return client


async def enabled(server: Server, user: str, resource: str, priority: int = 0) -> C2SClient:
    client = await online(server, user, resource, priority)
    reply = await client.iq(ENABLE)
    assert reply.attrs["type"] == "result", str(reply)
    return client


def forget(*clients: Client) -> None:
    for c in clients:
        c.take()


def carbon(direction: str, user: str, to: str, inner: str, mtype: str = "chat") -> str:
    return (
        f'<message from="{user}" to="{to}" type="{mtype}"><{direction} {CARBONS}>'
        f"<forwarded {FORWARD}>{inner}</forwarded></{direction}></message>"
    )


# -- enabling ------------------------------------------------------------------------------------
async def test_enabling_carbons_is_acknowledged_from_the_bare_jid(server: C2SServer) -> None:
    phone = await online(server, "alice", "phone")
    reply = await phone.iq(f'<iq type="set" id="e1"><enable {CARBONS}/></iq>')
    assert_same(
        reply, '<iq type="result" id="e1" from="alice@localhost" to="alice@localhost/phone"/>'
    )
    reply = await phone.iq(f'<iq type="set" id="e2" to="alice@localhost"><enable {CARBONS}/></iq>')
    assert reply.attrs["type"] == "result", "enabling twice is not an error"
    reply = await phone.iq(f'<iq type="set" id="d1"><disable {CARBONS}/></iq>')
    assert_same(
        reply, '<iq type="result" id="d1" from="alice@localhost" to="alice@localhost/phone"/>'
    )


async def test_a_carbons_get_is_a_bad_request(server: C2SServer) -> None:
    phone = await online(server, "alice", "phone")
    reply = await phone.iq(f'<iq type="get" id="g"><enable {CARBONS}/></iq>')
    assert error_condition(reply) == "bad-request"


async def test_enabling_carbons_for_someone_else_is_not_allowed(server: C2SServer) -> None:
    await server.register("bob")
    phone = await online(server, "alice", "phone")
    reply = await phone.iq(f'<iq type="set" id="x" to="bob@localhost"><enable {CARBONS}/></iq>')
    assert error_condition(reply) == "not-allowed"


async def test_the_server_advertises_carbons_in_disco(server: C2SServer) -> None:
    phone = await online(server, "alice", "phone")
    info = 'xmlns="http://jabber.org/protocol/disco#info"'
    reply = await phone.iq(f'<iq type="get" to="localhost"><query {info}/></iq>')
    query = reply.find("query")
    assert query is not None
    assert "urn:xmpp:carbons:2" in [f.attrs["var"] for f in query.find_all("feature")]


# -- sent ------------------------------------------------------------------------------------------
async def test_a_sent_message_is_copied_to_the_other_enabled_resources_only(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    tablet = await online(server, "alice", "tablet")  # carbons not enabled
    forget(bob, phone, desk, tablet)
    await phone.say('<message to="bob@localhost/b" type="chat" id="m1"><body>hi</body></message>')
    original = (
        '<message xmlns="jabber:client" from="alice@localhost/phone" to="bob@localhost/b"'
        ' type="chat" id="m1"><body>hi</body></message>'
    )
    assert_xml(bob.take(), [original])
    assert_xml(desk.take(), [carbon("sent", "alice@localhost", "alice@localhost/desk", original)])
    assert phone.take() == [], "the sending resource gets no copy"
    assert tablet.take() == [], "a resource without carbons gets no copy"


async def test_the_sender_needs_no_carbons_for_its_messages_to_be_copied(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await online(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(bob, phone, desk)
    await phone.say('<message to="bob@localhost" type="chat"><body>hi</body></message>')
    got = desk.take()
    assert len(got) == 1 and got[0].find("sent", "urn:xmpp:carbons:2") is not None


async def test_the_bounce_of_a_copied_message_is_copied_too(server: C2SServer) -> None:
    await server.register("bob")  # offline, and no mod_offline: the message bounces
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(phone, desk)
    await phone.say('<message to="bob@localhost" type="chat" id="b"><body>hi</body></message>')
    bounce = phone.take()
    assert [error_condition(m) for m in bounce] == ["service-unavailable"]
    assert_xml(
        desk.take(),
        [
            carbon("sent", "alice@localhost", "alice@localhost/desk",
                   '<message xmlns="jabber:client" from="alice@localhost/phone" to="bob@localhost"'
                   ' type="chat" id="b"><body>hi</body></message>'),
            carbon("received", "alice@localhost", "alice@localhost/desk",
                   bounce[0].to_string("urn:xmpp:forward:0"), mtype="error"),
        ],
    )  # fmt: skip


async def test_disabling_carbons_stops_the_copies(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    await desk.iq(f'<iq type="set" id="off"><disable {CARBONS}/></iq>')
    forget(bob, phone, desk)
    await phone.say('<message to="bob@localhost/b" type="chat"><body>hi</body></message>')
    await bob.say('<message to="alice@localhost/phone" type="chat"><body>yo</body></message>')
    assert desk.take() == []


# -- received --------------------------------------------------------------------------------------
async def test_a_message_to_a_full_jid_is_copied_as_received_to_the_other_resources(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    laptop = await enabled(server, "alice", "laptop")
    forget(bob, phone, desk, laptop)
    await bob.say(
        '<message to="alice@localhost/phone" type="chat" id="r1"><body>yo</body></message>'
    )
    original = (
        '<message xmlns="jabber:client" from="bob@localhost/b" to="alice@localhost/phone"'
        ' type="chat" id="r1"><body>yo</body></message>'
    )
    assert_xml(phone.take(), [original])
    assert_xml(
        desk.take(), [carbon("received", "alice@localhost", "alice@localhost/desk", original)]
    )
    assert_xml(
        laptop.take(), [carbon("received", "alice@localhost", "alice@localhost/laptop", original)]
    )
    assert bob.take() == []


async def test_a_message_to_the_bare_jid_is_copied_to_the_resources_that_did_not_get_it(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone", priority=5)
    desk = await enabled(server, "alice", "desk", priority=5)
    laptop = await enabled(server, "alice", "laptop", priority=1)
    away = await enabled(server, "alice", "away", priority=-1)
    forget(bob, phone, desk, laptop, away)
    await bob.say('<message to="alice@localhost" type="chat" id="r2"><body>all</body></message>')
    original = (
        '<message xmlns="jabber:client" from="bob@localhost/b" to="alice@localhost"'
        ' type="chat" id="r2"><body>all</body></message>'
    )
    assert_xml(phone.take(), [original])
    assert_xml(desk.take(), [original])
    (
        assert_xml(
            laptop.take(),
            [carbon("received", "alice@localhost", "alice@localhost/laptop", original)],
        ),
        "one copy, although two resources received the original",
    )
    assert_xml(
        away.take(), [carbon("received", "alice@localhost", "alice@localhost/away", original)]
    )


async def test_a_message_to_a_resource_that_is_gone_is_copied_once(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone", priority=5)
    desk = await enabled(server, "alice", "desk", priority=1)
    forget(bob, phone, desk)
    await bob.say('<message to="alice@localhost/old" type="chat"><body>?</body></message>')
    assert [m.find_text("body") for m in phone.take()] == ["?"]
    got = desk.take()
    assert len(got) == 1 and got[0].find("received", "urn:xmpp:carbons:2") is not None


# -- what is not copied ----------------------------------------------------------------------------
async def test_private_messages_are_not_copied_and_lose_the_private_element_on_delivery(
    server: C2SServer,
) -> None:
    bob = await enabled(server, "bob", "b")
    bob2 = await enabled(server, "bob", "b2")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(bob, bob2, phone, desk)
    await phone.say(
        f'<message to="bob@localhost/b" type="chat" id="p"><body>psst</body><private {CARBONS}/>'
        "</message>"
    )
    assert_xml(
        bob.take(),
        ['<message from="alice@localhost/phone" to="bob@localhost/b" type="chat" id="p">'
         "<body>psst</body></message>"],
    )  # fmt: skip
    assert desk.take() == [] and bob2.take() == []


async def test_a_private_message_to_a_bare_jid_reaching_two_resources_is_copied_to_nobody(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone", priority=1)
    desk = await enabled(server, "alice", "desk", priority=1)
    low = await enabled(server, "alice", "low", priority=0)
    forget(bob, phone, desk, low)
    await bob.say(
        f'<message to="alice@localhost" type="chat"><body>s</body><private {CARBONS}/></message>'
    )
    for resource in (phone, desk):
        assert_xml(
            resource.take(),
            [
                '<message from="bob@localhost/b" to="alice@localhost" type="chat"><body>s</body>'
                "</message>"
            ],
        )
    assert low.take() == []


async def test_the_no_copy_hint_suppresses_carbons_in_both_directions(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(bob, phone, desk)
    hint = '<no-copy xmlns="urn:xmpp:hints"/>'
    await phone.say(f'<message to="bob@localhost/b" type="chat"><body>1</body>{hint}</message>')
    await bob.say(f'<message to="alice@localhost/phone" type="chat"><body>2</body>{hint}</message>')
    assert desk.take() == []
    assert [m.find("no-copy", "urn:xmpp:hints") is not None for m in phone.take()] == [True]


async def test_a_carbon_is_never_carbon_copied(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(bob, phone, desk)
    await bob.say(
        f'<message to="alice@localhost/phone" type="chat"><received {CARBONS}>'
        f'<forwarded {FORWARD}><message from="x@localhost/y"><body>!</body></message>'
        "</forwarded></received></message>"
    )
    assert len(phone.take()) == 1, "delivered as it is (a client ignores it: not from its JID)"
    assert desk.take() == []


async def test_groupchat_headline_and_empty_normal_messages_are_not_copied(
    server: C2SServer,
) -> None:
    bob = await online(server, "bob", "b")
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(bob, phone, desk)
    await bob.say('<message to="alice@localhost/phone" type="headline"><body>news</body></message>')
    await bob.say('<message to="alice@localhost/phone"><subject>no body</subject></message>')
    await bob.say('<message to="alice@localhost/phone" type="groupchat"><body>g</body></message>')
    assert desk.take() == []
    await bob.say('<message to="alice@localhost/phone"><body>normal with a body</body></message>')
    state = '<composing xmlns="http://jabber.org/protocol/chatstates"/>'
    await bob.say(f'<message to="alice@localhost/phone">{state}</message>')
    got = [unwrap(m) for m in desk.take()]
    assert [m.find_text("body") if m is not None else "?" for m in got] == [
        "normal with a body",
        None,
    ]


async def test_muc_private_messages_are_copied_when_sent_but_not_when_received(
    server: C2SServer,
) -> None:
    phone = await enabled(server, "alice", "phone")
    desk = await enabled(server, "alice", "desk")
    forget(phone, desk)
    x = '<x xmlns="http://jabber.org/protocol/muc#user"/>'
    await server.route(
        f'<message from="room@muc.localhost/bob" to="alice@localhost/phone" type="chat">'
        f"<body>pm</body>{x}</message>"
    )
    assert len(phone.take()) == 1
    assert desk.take() == []
    await phone.say(
        f'<message to="room@muc.localhost/bob" type="chat"><body>re</body>{x}</message>'
    )
    got = desk.take()
    assert len(got) == 1 and got[0].find("sent", "urn:xmpp:carbons:2") is not None


def test_eligibility_follows_the_suggested_rules_of_xep_0280() -> None:
    def ok(xml: str, direction: Direction = "received") -> bool:
        return eligible(parse_element(xml), direction)

    assert ok('<message type="chat"/>')
    assert ok("<message><body>b</body></message>")
    assert not ok("<message/>")
    assert ok('<message><received xmlns="urn:xmpp:receipts" id="1"/></message>')
    assert ok('<message><displayed xmlns="urn:xmpp:chat-markers:0" id="1"/></message>')
    assert ok('<message type="error"><body>bounced</body><error/></message>')
    assert not ok('<message type="error"><error/></message>')
    assert not ok('<message type="groupchat"><body>b</body></message>')
    assert not ok('<message type="headline"><body>b</body></message>')
    muc_pm = '<message type="chat"><x xmlns="http://jabber.org/protocol/muc#user"/></message>'
    assert not ok(muc_pm) and ok(muc_pm, "sent")
    invite = (
        '<message><x xmlns="http://jabber.org/protocol/muc#user"><invite from="a@b"/></x></message>'
    )
    assert ok(invite)
    assert ok('<message><x xmlns="jabber:x:conference" jid="room@muc"/></message>')
    assert not ok(carbon("sent", "a@b", "a@b/c", "<message/>"))


# -- Bind 2 ----------------------------------------------------------------------------------------
async def test_bind2_advertises_carbons_and_enables_them_inline(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await online(server, "alice", "phone")
    desk = await server.connect("alice", "desk")
    assert isinstance(desk, C2SClient)
    features: list[Element] = []
    await server.hooks.run(BIND2_STREAM_FEATURES, HOST, features, {"session": desk})
    assert [f.to_string("urn:xmpp:bind:0") for f in features] == [
        '<feature var="urn:xmpp:carbons:2"/>'
    ]
    bound = await desk.bind2(f'<bind xmlns="urn:xmpp:bind:0"><enable {CARBONS}/></bind>')
    assert bound == [], "XEP-0386: enabling carbons needs no response in <bound/>"
    forget(bob, phone, desk)
    await bob.say('<message to="alice@localhost/phone" type="chat"><body>yo</body></message>')
    got = desk.take()
    assert len(got) == 1 and got[0].find("received", "urn:xmpp:carbons:2") is not None


async def test_a_bind2_request_without_carbons_leaves_them_off(server: C2SServer) -> None:
    bob = await online(server, "bob", "b")
    phone = await online(server, "alice", "phone")
    desk = await online(server, "alice", "desk")
    await desk.bind2('<bind xmlns="urn:xmpp:bind:0"><tag>x</tag></bind>')
    forget(bob, phone, desk)
    await bob.say('<message to="alice@localhost/phone" type="chat"><body>yo</body></message>')
    assert desk.take() == []
