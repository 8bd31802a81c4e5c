"""Stream management (XEP-0198), SASL2 (XEP-0388) and Bind 2 (XEP-0386) over WebSocket: counting,
a dropped WebSocket resumed on a new one or on TCP (the SM session does not care about the
transport), hand-over from a live connection, and the stanza size limit, beside TCP clients."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest

from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto

from .conftest import NodeFactory
from .test_im_with_slixmpp import wait_for
from .test_stream_management import resume_raw, wait_detached
from .test_websocket import WsClient, connect
from .test_websocket_parity import (
    SM,
    Client,
    chat,
    next_stanza,
    say,
    start_ws_node,
    sync,
    tcp_login,
    ws_login,
)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def ws_node(start_node: NodeFactory) -> Node:
    return await start_ws_node(start_node)


# -- stream management ----------------------------------------------------------------------------
async def ws_sm_client(
    session: aiohttp.ClientSession, node: Node, user: str = "alice"
) -> tuple[WsClient, str]:
    """Logged in over WebSocket, available, SM enabled with resumption: (client, SM-ID)."""
    client = await ws_login(session, node, user, "web")
    await client.send(f"<presence xmlns='{ns.CLIENT}'/>")
    await client.expect("presence")
    await client.send(f"<enable {SM} resume='true'/>")
    enabled = await client.expect("enabled", ns.SM)
    assert enabled.attrs["resume"] in ("true", "1")
    return client, enabled.attrs["id"]


async def bodies(client: Client, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        out.append((await client.expect("message")).find_text("body") or "")
    return out


async def ack_without_more_messages(client: Client) -> int:
    """Request an ack; every element before <a/> must not be a message. Returns h."""
    await say(client, f"<r {SM}/>")
    while True:
        event = await client.next_event()
        assert isinstance(event, Element), event
        assert event.name != "message", f"unexpected extra message {event}"
        if event.name == "a" and event.xmlns == ns.SM:
            return int(event.attrs["h"])


async def ws_resume(
    session: aiohttp.ClientSession, node: Node, smid: str, h: int
) -> tuple[WsClient, Element]:
    client = await connect(session, node)
    await client.open_stream()
    assert (await client.scram("alice")).name == "success"
    await client.open_stream()
    await client.send(f"<resume {SM} previd='{smid}' h='{h}'/>")
    reply = await client.expect(lambda e: e.xmlns == ns.SM and e.name in ("resumed", "failed"))
    return client, reply


async def test_stream_management_counts_over_websocket(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    alice, _ = await ws_sm_client(http_session, ws_node)
    bob = await tcp_login(ws_node, "bob", "tcp")
    assert await ack_without_more_messages(alice) == 0
    for i in range(3):
        await alice.send(chat("bob@localhost/tcp", f"a{i}"))
    assert await bodies(bob, 3) == ["a0", "a1", "a2"]
    assert await ack_without_more_messages(alice) == 3
    bob.send(chat(alice.jid, "b0"))
    assert await bodies(alice, 1) == ["b0"]
    await alice.send(f"<a {SM} h='1'/>")
    await alice.send(f"<a {SM} h='5'/>")  # more than the server sent
    error = await alice.expect("error", ns.STREAM)
    assert error.find("undefined-condition", ns.STREAMS_ERRORS) is not None
    assert error.find("handled-count-too-high", ns.SM) is not None
    await bob.close()


async def test_a_dropped_websocket_resumes_on_a_new_websocket_with_every_message_once(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    alice, smid = await ws_sm_client(http_session, ws_node)
    bob = await tcp_login(ws_node, "bob", "tcp")
    for i in range(1, 4):
        bob.send(chat(alice.jid, f"m{i}"))
    assert await bodies(alice, 3) == ["m1", "m2", "m3"]
    await alice.send(f"<a {SM} h='2'/>")  # m3 arrived but was not acknowledged
    await alice.send(chat("bob@localhost/tcp", "before the tunnel"))
    assert await bodies(bob, 1) == ["before the tunnel"]
    alice.abort()
    for i in range(4, 7):  # some before the server noticed, some after
        bob.send(chat(alice.jid, f"m{i}"))
        await asyncio.sleep(0.02)
    await wait_detached(ws_node, "alice")
    bob.send(chat(alice.jid, "m7"))

    new, resumed = await ws_resume(http_session, ws_node, smid, h=2)
    assert resumed.name == "resumed" and resumed.attrs["previd"] == smid
    assert resumed.attrs["h"] == "1"  # "before the tunnel" (<presence/> preceded <enable/>)
    assert await bodies(new, 5) == ["m3", "m4", "m5", "m6", "m7"]
    assert await ack_without_more_messages(new) == 1  # the count goes on from the old stream
    await new.send(chat("bob@localhost/tcp", "back"))
    assert await bodies(bob, 1) == ["back"]
    assert await ack_without_more_messages(new) == 2
    records = [r for r in ws_node.sessions.all_sessions() if r.jid.local == "alice"]
    assert len(records) == 1 and str(records[0].jid) == alice.jid
    await new.close()
    await bob.close()


@pytest.mark.parametrize("direction", ["websocket-to-tcp", "tcp-to-websocket"])
async def test_a_stream_management_session_moves_between_transports(
    ws_node: Node, http_session: aiohttp.ClientSession, direction: str
) -> None:
    bob = await tcp_login(ws_node, "bob", "tcp")
    if direction == "websocket-to-tcp":
        ws, smid = await ws_sm_client(http_session, ws_node)
        jid = ws.jid
        bob.send(chat(jid, "seen"))
        assert await bodies(ws, 1) == ["seen"]
        ws.abort()
    else:
        tcp = await tcp_login(ws_node, "alice", "web")
        jid = tcp.jid
        tcp.send("<presence/>")
        await tcp.expect("presence")
        tcp.send(f"<enable {SM} resume='true'/>")
        smid = (await tcp.expect("enabled")).attrs["id"]
        bob.send(chat(jid, "seen"))
        assert await bodies(tcp, 1) == ["seen"]
        tcp.writer.transport.abort()
    await wait_detached(ws_node, "alice")
    bob.send(chat(jid, "while away"))
    new: Client
    if direction == "websocket-to-tcp":
        new, resumed = await resume_raw(ws_node, smid, h=0)
    else:
        new, resumed = await ws_resume(http_session, ws_node, smid, h=0)
    assert resumed.name == "resumed"
    assert await bodies(new, 2) == ["seen", "while away"]
    await say(new, chat("bob@localhost/tcp", "moved"))
    got = await bob.expect("message")
    assert got.attrs["from"] == jid and got.find_text("body") == "moved"
    assert await ack_without_more_messages(new) == 1
    await new.close()
    await bob.close()


async def test_resuming_a_live_websocket_session_closes_the_old_websocket_with_conflict(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    """The client thinks its socket is dead, the server does not know yet: the new stream takes
    the session over; the old WebSocket gets <conflict/>, <close/> and the close handshake."""
    old, smid = await ws_sm_client(http_session, ws_node)
    bob = await tcp_login(ws_node, "bob", "tcp")
    bob.send(chat(old.jid, "one"))
    assert await bodies(old, 1) == ["one"]
    new, resumed = await ws_resume(http_session, ws_node, smid, h=0)
    assert resumed.name == "resumed"
    error = await old.expect("error", ns.STREAM)
    assert error.find("conflict", ns.STREAMS_ERRORS) is not None
    closed = await old.next_event()
    assert not isinstance(closed, Element), closed  # <close/>
    msg = await old.ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert await bodies(new, 1) == ["one"]  # never acknowledged: sent again
    bob.send(chat(old.jid, "two"))
    assert await bodies(new, 1) == ["two"]
    assert len(ws_node.sessions.user_sessions(Jid("alice", "localhost"))) == 1
    await new.close()
    await bob.close()


async def test_the_server_asks_a_websocket_client_for_acks_and_counts_its_answers(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    """ack_freq = 1 (the default): an <r/> follows each stanza; <a/> releases the buffer."""
    alice, smid = await ws_sm_client(http_session, ws_node)
    bob = await tcp_login(ws_node, "bob", "tcp")
    for i in range(3):
        bob.send(chat(alice.jid, f"m{i}"))
        message = await next_stanza(alice)
        assert message.name == "message" and message.find_text("body") == f"m{i}"
        request = await next_stanza(alice)
        assert (request.name, request.xmlns) == ("r", ns.SM)
        await alice.send(f"<a {SM} h='{i + 1}'/>")
    await sync(alice)
    alice.abort()
    await wait_detached(ws_node, "alice")
    new, resumed = await ws_resume(http_session, ws_node, smid, h=3)
    assert resumed.name == "resumed"
    assert await ack_without_more_messages(new) == 1  # the ping of `sync`; nothing re-sent
    await new.close()
    await bob.close()


@pytest.mark.parametrize("transport", ["websocket", "tcp"])
async def test_a_stanza_over_the_size_limit_ends_a_resumable_session_for_good(
    ws_node: Node, http_session: aiohttp.ClientSession, transport: str
) -> None:
    """policy-violation, then the stream is closed and the session is not kept for resumption
    (before: aiohttp refused the frame with close code 1009, which looked like a lost socket)."""
    client: Client
    if transport == "websocket":
        client, _ = await ws_sm_client(http_session, ws_node)
    else:
        client = await tcp_login(ws_node, "alice", "web")
        client.send(f"<enable {SM} resume='true'/>")
        await client.expect("enabled")
    big = "x" * 70_000  # general.max_stanza_size is 65536
    await say(client, chat("bob@localhost", big))
    error = await client.expect(lambda e: e.name == "error" and e.xmlns == ns.STREAM)
    assert error.find("policy-violation", ns.STREAMS_ERRORS) is not None
    with pytest.raises((ConnectionError, TimeoutError)):
        await client.expect("never")  # then the stream ends
    await wait_for(lambda: not ws_node.sessions.user_sessions(Jid("alice", "localhost")))


# -- SASL2 and Bind 2 -----------------------------------------------------------------------------
async def ws_sasl2(client: WsClient, inline: str) -> Element:
    """SCRAM-SHA-256 over SASL2 with inline requests; <success/> (signature checked)."""
    scram = ScramClient("SCRAM-SHA-256", "alice", secrets.token_urlsafe(18))
    first = base64.b64encode(scram.client_first()).decode()
    await client.send(
        f"<authenticate xmlns='{ns.SASL2}' mechanism='SCRAM-SHA-256'>"
        f"<initial-response>{first}</initial-response>"
        "<user-agent id='0b5b7d6e-1f3c-4a8e-9b2d-5c6f7a8b9c0d'><software>ws</software>"
        f"</user-agent>{inline}</authenticate>"
    )
    challenge = await client.expect("challenge", ns.SASL2)
    server_first = scram.receive_server_first(base64.b64decode(challenge.text))
    salted = scram_crypto.salted_password(
        scram.hash,
        scram_crypto.prepare_password("secret"),
        server_first.salt,
        server_first.iterations,
    )
    final = base64.b64encode(scram.client_final(salted)).decode()
    await client.send(f"<response xmlns='{ns.SASL2}'>{final}</response>")
    success = await client.expect(lambda e: e.xmlns == ns.SASL2)
    assert success.name == "success", success
    scram.receive_server_final(base64.b64decode(success.find_text("additional-data") or ""))
    return success


async def test_sasl2_with_bind2_and_inline_resumption_work_over_websocket(
    ws_node: Node, http_session: aiohttp.ClientSession
) -> None:
    client = await connect(http_session, ws_node)
    features = await client.open_stream()
    auth = features.find("authentication", ns.SASL2)
    assert auth is not None, "SASL2 is offered on WebSocket as on TCP"
    assert "SCRAM-SHA-256" in [m.text for m in auth.find_all("mechanism")]
    inline = auth.find("inline")
    assert inline is not None and inline.find("bind", ns.BIND2) is not None
    assert inline.find("sm", ns.SM) is not None
    bind = f"<bind xmlns='{ns.BIND2}'><tag>web</tag><enable {SM} resume='true'/></bind>"
    success = await ws_sasl2(client, bind)
    jid = success.find_text("authorization-identifier", ns.SASL2) or ""
    assert jid.startswith("alice@localhost/web.")
    enabled = success.find("bound", ns.BIND2).find("enabled", ns.SM)  # type: ignore[union-attr]
    assert enabled is not None
    after = await client.expect("features", ns.STREAM)  # no stream restart
    assert after.find("bind", ns.BIND) is None

    bob = await tcp_login(ws_node, "bob", "tcp")
    bob.send(chat(jid, "lost in flight"))
    assert await bodies(client, 1) == ["lost in flight"]
    client.abort()
    await wait_detached(ws_node, "alice")
    again = await connect(http_session, ws_node)
    await again.open_stream()
    success = await ws_sasl2(again, f"<resume {SM} previd='{enabled.attrs['id']}' h='0'/>")
    assert success.find("resumed", ns.SM) is not None
    assert success.find_text("authorization-identifier", ns.SASL2) == jid
    assert await bodies(again, 1) == ["lost in flight"]
    await again.send(chat("bob@localhost/tcp", "resumed"))
    assert await bodies(bob, 1) == ["resumed"]
    await again.close()
    await bob.close()
