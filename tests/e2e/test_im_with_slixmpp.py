"""Instant messaging with an independent client library (slixmpp) over real TLS sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import slixmpp

from meerkat.server import Node

from .conftest import ClientFactory
from .rawxmpp import logged_in


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def collect(client: slixmpp.ClientXMPP, event: str) -> list[Any]:
    seen: list[Any] = []
    client.add_event_handler(event, seen.append)
    return seen


async def test_two_users_subscribe_to_each_other_and_chat(
    node: Node, xmpp_client: ClientFactory
) -> None:
    alice = await xmpp_client("alice@localhost/a", node.c2s_port(0))
    bob = await xmpp_client("bob@localhost/b", node.c2s_port(1), direct_tls=True)
    alice.auto_authorize = True
    alice.auto_subscribe = True
    bob.auto_authorize = True
    bob.auto_subscribe = True
    await alice.get_roster()
    await bob.get_roster()
    alice.send_presence()
    bob.send_presence()
    alice.send_presence(pto="bob@localhost", ptype="subscribe")
    await wait_for(
        lambda: (
            alice.client_roster["bob@localhost"]["subscription"] == "both"
            and bob.client_roster["alice@localhost"]["subscription"] == "both"
        )
    )
    await wait_for(lambda: bool(alice.client_roster["bob@localhost"].resources))
    await wait_for(lambda: bool(bob.client_roster["alice@localhost"].resources))
    got = collect(bob, "message")
    alice.send_message("bob@localhost", "hello bob", mtype="chat")
    await wait_for(lambda: bool(got))
    assert got[0]["body"] == "hello bob"
    assert str(got[0]["from"]) == "alice@localhost/a"
    # The roster survives a new login.
    bob.disconnect()
    await wait_for(lambda: not alice.client_roster["bob@localhost"].resources)
    roster = await alice.get_roster()
    items = roster["roster"]["items"]
    assert items[slixmpp.JID("bob@localhost")]["subscription"] == "both"


async def test_a_message_to_an_offline_user_is_delivered_with_a_delay_stamp_on_login(
    node: Node, xmpp_client: ClientFactory
) -> None:
    alice = await xmpp_client("alice@localhost/a", node.c2s_port(0))
    alice.send_message("carol@localhost", "while you were out", mtype="chat")
    await asyncio.sleep(0.2)
    carol = slixmpp.ClientXMPP("carol@localhost/c", "secret")
    carol.ssl_context.check_hostname = False
    carol.ssl_context.verify_mode = 0
    carol.enable_direct_tls = False
    carol.register_plugin("xep_0203")
    got = collect(carol, "message")
    carol.add_event_handler("session_start", lambda _: carol.send_presence())
    carol.connect("127.0.0.1", node.c2s_port(0))
    try:
        await wait_for(lambda: bool(got))
        msg = got[0]
        assert msg["body"] == "while you were out"
        assert msg["delay"]["stamp"] is not None
    finally:
        carol.disconnect()


async def test_a_second_resource_receives_bare_jid_messages_by_priority(node: Node) -> None:
    low = await logged_in(node.c2s_port(0), "bob", "low")
    high = await logged_in(node.c2s_port(0), "bob", "high")
    low.send("<presence><priority>1</priority></presence>")
    high.send("<presence><priority>5</priority></presence>")
    await asyncio.sleep(0.2)
    alice = await logged_in(node.c2s_port(0), "alice", "a")
    alice.send("<message to='bob@localhost' type='chat' id='pm'><body>to the best</body></message>")
    msg = await high.expect(lambda e: e.name == "message" and e.attrs.get("id") == "pm")
    assert msg.find_text("body") == "to the best"
    low.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await low.expect(lambda e: e.attrs.get("id") in ("pm", "sync"))
    assert reply.attrs["id"] == "sync", "the lower-priority resource must not get the message"
    for c in (low, high, alice):
        await c.close()
