"""Carbons (XEP-0280) and client state indication (XEP-0352) with slixmpp over real TLS sockets."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import slixmpp

from meerkat.server import Node

from .test_im_with_slixmpp import collect, wait_for

Connect = Callable[..., Awaitable[slixmpp.ClientXMPP]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Like conftest's `xmpp_client`, with plugins registered before the stream opens."""
    clients: list[slixmpp.ClientXMPP] = []

    async def make(
        jid: str, port: int, plugins: Sequence[str] = (), *, direct_tls: bool = False
    ) -> slixmpp.ClientXMPP:
        client = slixmpp.ClientXMPP(jid, "secret")
        for plugin in plugins:
            client.register_plugin(plugin)
        client.ssl_context.check_hostname = False
        client.ssl_context.verify_mode = ssl.CERT_NONE
        client.enable_direct_tls = direct_tls
        client.enable_starttls = not direct_tls
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client.add_event_handler(
            "session_start", lambda _: started.done() or started.set_result(None)
        )
        client.connect("127.0.0.1", port)
        clients.append(client)
        await asyncio.wait_for(started, 10)
        return client

    yield make
    for client in clients:
        client.disconnect()
    await asyncio.sleep(0)


async def test_carbons_copy_received_and_sent_messages_to_the_other_resource(
    node: Node, connect: Connect
) -> None:
    phone = await connect("alice@localhost/phone", node.c2s_port(0), ["xep_0280"])
    desk = await connect("alice@localhost/desk", node.c2s_port(1), ["xep_0280"], direct_tls=True)
    bob = await connect("bob@localhost/b", node.c2s_port(0))
    await phone.plugin["xep_0280"].enable()
    await desk.plugin["xep_0280"].enable()
    received = collect(desk, "carbon_received")
    sent = collect(desk, "carbon_sent")
    at_phone = collect(phone, "message")
    at_bob = collect(bob, "message")

    bob.send_message("alice@localhost/phone", "hello phone", mtype="chat")
    await wait_for(lambda: bool(received) and bool(at_phone))
    copy = received[0]["carbon_received"]
    assert str(received[0]["from"]) == "alice@localhost"
    assert str(received[0]["to"]) == "alice@localhost/desk"
    assert copy["body"] == "hello phone"
    assert str(copy["from"]) == "bob@localhost/b"
    assert str(copy["to"]) == "alice@localhost/phone"

    phone.send_message("bob@localhost/b", "hi bob", mtype="chat")
    await wait_for(lambda: bool(sent) and bool(at_bob))
    copy = sent[0]["carbon_sent"]
    assert copy["body"] == "hi bob"
    assert str(copy["from"]) == "alice@localhost/phone"
    assert str(copy["to"]) == "bob@localhost/b"
    assert len(received) == 1, "the phone's own message is not copied back as received"

    private = phone.make_message("bob@localhost/b", "just between us", mtype="chat")
    private.enable("carbon_private")
    private.send()
    await wait_for(lambda: len(at_bob) == 2)
    assert at_bob[1]["body"] == "just between us"
    assert len(sent) == 1, "a <private/> message is not copied"


async def test_an_inactive_client_gets_a_presence_change_only_when_it_is_active_again(
    node: Node, connect: Connect
) -> None:
    alice = await connect("alice@localhost/phone", node.c2s_port(0), ["xep_0352"])
    bob = await connect("bob@localhost/b", node.c2s_port(1), direct_tls=True)
    assert alice.plugin["xep_0352"].enabled, "the server offers <csi/> after authentication"
    bob.auto_authorize = True
    bob.auto_subscribe = False  # one-way: no subscription traffic left in flight later
    await alice.get_roster()
    await bob.get_roster()
    alice.send_presence()
    bob.send_presence()
    alice.send_presence(pto="bob@localhost", ptype="subscribe")
    await wait_for(lambda: alice.client_roster["bob@localhost"]["subscription"] in ("to", "both"))
    bob.send_presence()  # now alice is subscribed: she sees bob online
    await wait_for(lambda: bool(alice.client_roster["bob@localhost"].resources))

    def bobs_show() -> str:
        return str(alice.client_roster["bob@localhost"].resources.get("b", {}).get("show", ""))

    alice.plugin["xep_0352"].send_inactive()
    await alice.get_roster()  # the server has read <inactive/> once this is answered
    bob.send_presence(pshow="away")
    await bob.get_roster()  # bob's presence has been routed to alice's session
    await asyncio.sleep(0.3)
    assert bobs_show() == "", "an inactive client does not get presence updates"
    alice.plugin["xep_0352"].send_active()
    await wait_for(lambda: bobs_show() == "away")

    alice.plugin["xep_0352"].send_inactive()
    await alice.get_roster()
    bob.send_presence(pshow="dnd")
    bob.send_message("alice@localhost/phone", "urgent", mtype="chat")
    got = collect(alice, "message")
    await wait_for(lambda: bool(got))
    assert bobs_show() == "dnd", "the held presence came out before the message"
