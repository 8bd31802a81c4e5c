"""Presence, roster, carbons and CSI over WebSocket (RFC 7395) behave as over TCP: each test
mixes a WebSocket client with TCP clients of the same node, real sockets, raw XML on both sides
(aiohttp's WebSocket client, `rawxmpp.RawClient`). The helpers here serve test_websocket_sm.py
too."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from meerkat.c2s.session import C2SSession
from meerkat.modules import DEFAULT_MODULES
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid

from .conftest import NodeFactory
from .rawxmpp import RawClient, logged_in
from .test_im_with_slixmpp import wait_for
from .test_websocket import WsClient, connect, ws_listen

SM = f"xmlns='{ns.SM}'"
Client = WsClient | RawClient


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


UNSHAPED = {"normal": {"max_rate": 1_000_000_000}, "fast": {"max_rate": 1_000_000_000}}
"""WebSocket sessions use the `c2s_shaper` rule ("normal" for users): unshaped here, as the
TCP listeners of the tests are ("shaper": "none")."""


async def start_ws_node(start_node: NodeFactory) -> Node:
    """Default modules; stream management resumable for 2 s; c2s (STARTTLS) and WebSocket."""
    modules: dict[str, object] = {name: {} for name in DEFAULT_MODULES}
    modules["mod_stream_management"] = {"resume_timeout": 2}
    return await start_node(listen=ws_listen(), modules=modules, shaper=UNSHAPED)


@pytest.fixture
async def ws_node(start_node: NodeFactory) -> Node:
    return await start_ws_node(start_node)


async def say(client: Client, data: str) -> None:
    if isinstance(client, WsClient):
        await client.send(data)
    else:
        client.send(data)


async def ws_login(session: aiohttp.ClientSession, node: Node, user: str, res: str) -> WsClient:
    client = await connect(session, node)
    await client.login(user, res)
    return client


async def tcp_login(node: Node, user: str, res: str) -> RawClient:
    return await logged_in(node.c2s_port(0), user, res)


def chat(to: str, body: str, extra: str = "") -> str:
    return (
        f"<message xmlns='{ns.CLIENT}' to='{to}' type='chat'><body>{body}</body>{extra}</message>"
    )


def presence_from(
    jid: str, ptype: str | None = None, show: str | None = None
) -> Callable[[Element], bool]:
    def match(el: Element) -> bool:
        return (
            el.name == "presence"
            and el.attrs.get("from") == jid
            and el.attrs.get("type") == ptype
            and (show is None or el.find_text("show") == show)
        )

    return match


async def roster(client: Client) -> dict[str, str]:
    """The client's roster: contact -> subscription."""
    rid = secrets.token_hex(4)
    await say(
        client, f"<iq xmlns='{ns.CLIENT}' type='get' id='{rid}'><query xmlns='{ns.ROSTER}'/></iq>"
    )
    reply = await client.expect(lambda e: e.name == "iq" and e.attrs.get("id") == rid)
    query = reply.find("query", ns.ROSTER)
    assert query is not None, reply
    return {item.attrs["jid"]: item.attrs.get("subscription", "") for item in query.elements()}


async def subscribe(asker: Client, asker_bare: str, approver: Client, approver_bare: str) -> None:
    """`asker` subscribes to `approver`'s presence, `approver` approves."""
    await say(asker, f"<presence xmlns='{ns.CLIENT}' to='{approver_bare}' type='subscribe'/>")
    request = await approver.expect(
        lambda e: e.name == "presence" and e.attrs.get("type") == "subscribe"
    )
    assert request.attrs["from"] == asker_bare
    await say(approver, f"<presence xmlns='{ns.CLIENT}' to='{asker_bare}' type='subscribed'/>")


async def befriend(ws: Client, tcp: RawClient) -> None:
    """Both available, then a mutual subscription (alice on `ws`, bob on `tcp`)."""
    await say(ws, f"<presence xmlns='{ns.CLIENT}'/>")
    await ws.expect(presence_from(ws.jid))
    tcp.send("<presence/>")
    await tcp.expect(presence_from(tcp.jid))
    await subscribe(ws, "alice@localhost", tcp, "bob@localhost")
    await ws.expect(presence_from(tcp.jid))  # bob's current presence, once subscribed
    await subscribe(tcp, "bob@localhost", ws, "alice@localhost")
    await tcp.expect(presence_from(ws.jid))
    assert (await roster(ws))["bob@localhost"] == "both"
    assert (await roster(tcp))["alice@localhost"] == "both"


async def next_stanza(client: Client) -> Element:
    """The next element, whatever it is (no skipping)."""
    event = await client.next_event()
    assert isinstance(event, Element), event
    return event


# -- roster and presence ------------------------------------------------------------------------
async def test_a_websocket_user_and_a_tcp_user_subscribe_and_see_each_others_presence(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    alice = await ws_login(http_session, ws_node, "alice", "web")
    bob = await tcp_login(ws_node, "bob", "tcp")
    await befriend(alice, bob)

    bob.send("<presence><show>away</show><status>lunch</status></presence>")
    got = await alice.expect(presence_from(bob.jid, show="away"))
    assert got.xmlns == ns.CLIENT and got.find_text("status") == "lunch"
    await say(alice, f"<presence xmlns='{ns.CLIENT}'><show>dnd</show></presence>")
    await bob.expect(presence_from(alice.jid, show="dnd"))

    # A roster push reaches the WebSocket resource when the TCP resource changes the roster.
    second = await tcp_login(ws_node, "alice", "tcp")
    second.send(
        f"<iq type='set' id='ren'><query xmlns='{ns.ROSTER}'>"
        "<item jid='bob@localhost' name='Bobby'/></query></iq>"
    )
    push = await alice.expect(lambda e: e.name == "iq" and e.attrs.get("type") == "set")
    item = push.find("query", ns.ROSTER).find("item")  # type: ignore[union-attr]
    assert item is not None and item.attrs["name"] == "Bobby"
    assert item.attrs["subscription"] == "both"
    await second.close()
    await alice.close()
    await bob.close()


@pytest.mark.parametrize("ending", ["close-element", "aborted-socket"])
async def test_the_contacts_of_a_websocket_user_see_it_go_unavailable(
    ws_node: Node, http_session: aiohttp.ClientSession, ending: str
) -> None:
    alice = await ws_login(http_session, ws_node, "alice", "web")
    bob = await tcp_login(ws_node, "bob", "tcp")
    await befriend(alice, bob)
    if ending == "close-element":
        await alice.send(f"<close xmlns='{ns.WEBSOCKET}'/>")
        closed = await alice.next_event()
        assert not isinstance(closed, Element), closed
    else:
        alice.abort()
    await bob.expect(presence_from(alice.jid, "unavailable"))
    await alice.close()
    await bob.close()


async def test_a_tcp_user_going_offline_is_seen_by_its_websocket_contact(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    alice = await ws_login(http_session, ws_node, "alice", "web")
    bob = await tcp_login(ws_node, "bob", "tcp")
    await befriend(alice, bob)
    await bob.close()
    await alice.expect(presence_from("bob@localhost/tcp", "unavailable"))
    await alice.close()


@pytest.mark.parametrize("transport", ["websocket", "tcp"])
async def test_users_subscribing_to_each_other_at_the_same_moment_both_end_with_both(
    ws_node: Node, http_session: aiohttp.ClientSession, transport: str
) -> None:
    """Regression: the receiver's roster item was written from the sender's task without a lock,
    so simultaneous subscription presences from each side could lose one side's change (seen
    with @xmpp/client over WebSocket, equally over TCP)."""
    for _ in range(6):
        alice: Client
        if transport == "websocket":
            alice = await ws_login(http_session, ws_node, "alice", "a")
        else:
            alice = await tcp_login(ws_node, "alice", "a")
        bob = await tcp_login(ws_node, "bob", "b")
        for client in (alice, bob):
            await say(client, f"<presence xmlns='{ns.CLIENT}'/>")
            await client.expect(presence_from(client.jid))
        for ptype in ("subscribe", "subscribed"):
            await say(alice, f"<presence xmlns='{ns.CLIENT}' to='bob@localhost' type='{ptype}'/>")
            bob.send(f"<presence to='alice@localhost' type='{ptype}'/>")
            if ptype == "subscribe":
                await alice.expect(presence_from("bob@localhost", "subscribe"))
                await bob.expect(presence_from("alice@localhost", "subscribe"))
        await alice.expect(presence_from(bob.jid), timeout=2)
        await bob.expect(presence_from(alice.jid), timeout=2)
        assert (await roster(alice))["bob@localhost"] == "both"
        assert (await roster(bob))["alice@localhost"] == "both"
        for client, contact in ((alice, "bob@localhost"), (bob, "alice@localhost")):
            await say(
                client,
                f"<iq xmlns='{ns.CLIENT}' type='set' id='rm'><query xmlns='{ns.ROSTER}'>"
                f"<item jid='{contact}' subscription='remove'/></query></iq>",
            )
            await client.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "rm")
        await alice.close()
        await bob.close()


# -- carbons --------------------------------------------------------------------------------------
def forwarded(el: Element, kind: str) -> Element | None:
    """The message inside a <received/> or <sent/> carbon, None when `el` is not one."""
    wrapper = el.find(kind, ns.CARBONS) if el.name == "message" else None
    if wrapper is None:
        return None
    fwd = wrapper.find("forwarded", "urn:xmpp:forward:0")
    assert fwd is not None
    return fwd.find("message", ns.CLIENT)


async def enable_carbons(client: Client) -> None:
    await say(
        client, f"<iq xmlns='{ns.CLIENT}' type='set' id='cc'><enable xmlns='{ns.CARBONS}'/></iq>"
    )
    reply = await client.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "cc")
    assert reply.attrs["type"] == "result", reply


async def carbon(client: Client, kind: str) -> Element:
    el = await client.expect(lambda e: forwarded(e, kind) is not None)
    assert el.attrs["from"] == "alice@localhost"
    inner = forwarded(el, kind)
    assert inner is not None
    return inner


async def test_carbons_flow_between_a_websocket_resource_and_a_tcp_resource(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    web = await ws_login(http_session, ws_node, "alice", "web")
    tcp = await tcp_login(ws_node, "alice", "tcp")
    bob = await tcp_login(ws_node, "bob", "b")
    await enable_carbons(web)
    await enable_carbons(tcp)

    bob.send(chat("alice@localhost/tcp", "to tcp"))
    copy = await carbon(web, "received")
    assert (copy.attrs["from"], copy.attrs["to"]) == ("bob@localhost/b", "alice@localhost/tcp")
    assert copy.find_text("body") == "to tcp"
    bob.send(chat("alice@localhost/web", "to web"))
    assert (await carbon(tcp, "received")).find_text("body") == "to web"
    assert (await web.expect("message")).find_text("body") == "to web"

    await web.send(chat("bob@localhost/b", "from web"))
    copy = await carbon(tcp, "sent")
    assert (copy.attrs["from"], copy.find_text("body")) == ("alice@localhost/web", "from web")
    tcp.send(chat("bob@localhost/b", "from tcp"))
    copy = await carbon(web, "sent")
    assert (copy.attrs["from"], copy.find_text("body")) == ("alice@localhost/tcp", "from tcp")

    hints = f"<private xmlns='{ns.CARBONS}'/><no-copy xmlns='urn:xmpp:hints'/>"
    await web.send(chat("bob@localhost/b", "private", hints))
    await web.send(chat("bob@localhost/b", "public again"))
    at_bob = [(await bob.expect("message")).find_text("body") for _ in range(4)]
    assert at_bob == ["from web", "from tcp", "private", "public again"]
    # The first copy after the private message is of the next one: none was made of it.
    assert (await carbon(tcp, "sent")).find_text("body") == "public again"
    for client in (web, tcp, bob):
        await client.close()


# -- client state indication ----------------------------------------------------------------------
async def sync(client: Client) -> None:
    """Once this returns, the server has read everything sent before and the client has read
    everything the server sent before."""
    pid = secrets.token_hex(4)
    await say(
        client,
        f"<iq xmlns='{ns.CLIENT}' type='get' id='{pid}' to='localhost'>"
        "<ping xmlns='urn:xmpp:ping'/></iq>",
    )
    await client.expect(lambda e: e.name == "iq" and e.attrs.get("id") == pid)


def held_by_csi(node: Node, jid: str) -> list[Element]:
    """What XEP-0352 holds for a session (read from the node: an IQ result would flush it)."""
    record = node.sessions.session(Jid.parse(jid))
    assert record is not None
    handle = node.sessions.local_handle(record.sid)
    assert isinstance(handle, C2SSession)
    held: dict[object, Element] = handle.state("mod_csi").get("held", {})
    return list(held.values())


async def nothing_arrives(client: Client, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await client.next_event(seconds)


@pytest.mark.parametrize("transport", ["websocket", "tcp"])
async def test_an_inactive_client_gets_presence_late_and_messages_at_once(
    ws_node: Node, http_session: aiohttp.ClientSession, transport: str
) -> None:
    alice: Client
    if transport == "websocket":
        alice = await ws_login(http_session, ws_node, "alice", "web")
    else:
        alice = await tcp_login(ws_node, "alice", "web")
    bob = await tcp_login(ws_node, "bob", "tcp")
    await befriend(alice, bob)
    await sync(alice)
    await say(alice, f"<inactive xmlns='{ns.CSI}'/>")
    await sync(alice)
    bob.send("<presence><show>away</show></presence>")
    await wait_for(lambda: bool(held_by_csi(ws_node, alice.jid)))
    await nothing_arrives(alice)
    await say(alice, f"<active xmlns='{ns.CSI}'/>")
    assert (await next_stanza(alice)).find_text("show") == "away"

    await say(alice, f"<inactive xmlns='{ns.CSI}'/>")
    await sync(alice)
    bob.send("<presence><show>dnd</show></presence>")
    await wait_for(lambda: bool(held_by_csi(ws_node, alice.jid)))
    bob.send(chat(alice.jid, "urgent"))
    held, message = await next_stanza(alice), await next_stanza(alice)
    assert held.name == "presence" and held.find_text("show") == "dnd"
    assert message.name == "message" and message.find_text("body") == "urgent"

    fresh = await connect(http_session, ws_node)
    await fresh.open_stream()
    await fresh.scram("carol")
    features = await fresh.open_stream()
    assert features.find("csi", ns.CSI) is not None, "CSI is offered after authentication"
    for client in (alice, bob, fresh):
        await client.close()
