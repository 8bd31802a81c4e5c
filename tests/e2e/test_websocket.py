"""XMPP over WebSocket (RFC 7395) on the HTTP listener: real sockets, aiohttp's client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import StreamError
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto
from meerkat.xmpp.stream import StreamClosed, StreamOpened, XmlStream

from .conftest import NodeFactory, free_port
from .rawxmpp import logged_in

TIMEOUT = 5.0
OPEN = f'<open xmlns="{ns.WEBSOCKET}" to="localhost" version="1.0"/>'
CLOSE = f'<close xmlns="{ns.WEBSOCKET}"/>'

Event = Element | StreamOpened | StreamClosed


def ws_listen() -> dict[str, Any]:
    return {
        "c2s": [{"port": free_port(), "ip_address": "127.0.0.1", "shaper": "none"}],
        "http": [
            {
                "port": free_port(),
                "ip_address": "127.0.0.1",
                "handlers": {"mod_websockets": [{}]},
            }
        ],
    }


class WsClient:
    """One WebSocket connection; each text frame is parsed as one element."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000, framed=True)
        self.jid = ""

    async def send(self, data: str) -> None:
        await self.ws.send_str(data)

    async def next_event(self, timeout: float = TIMEOUT) -> Event:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {msg.type!r}")
        events = self.parser.feed(msg.data.encode())
        assert len(events) == 1, (msg.data, events)
        return events[0]

    async def expect(
        self,
        match: str | Callable[[Element], bool],
        xmlns: str | None = None,
        timeout: float = TIMEOUT,
    ) -> Element:
        """The next element matching a name (and namespace) or a predicate; others skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - loop.time()))
            if not isinstance(event, Element):
                if isinstance(event, StreamClosed):
                    raise ConnectionError("stream closed while waiting")
                continue
            if callable(match):
                if match(event):
                    return event
            elif event.name == match and (xmlns is None or event.xmlns == xmlns):
                return event

    async def open_stream(self) -> Element:
        await self.ws.send_str(OPEN)
        opened = await self.next_event()
        assert isinstance(opened, StreamOpened), opened
        features = await self.next_event()
        assert isinstance(features, Element) and features.name == "features", features
        assert features.xmlns == ns.STREAM
        return features

    async def scram(
        self,
        username: str,
        password: str = "secret",
        mechanism: str = "SCRAM-SHA-256",
        channel_binding: tuple[str, bytes] | None = None,
    ) -> Element:
        """SASL SCRAM (-PLUS with `channel_binding` = (type, data)); <success/> or <failure/>."""
        client = ScramClient(
            mechanism, username, secrets.token_urlsafe(18), channel_binding=channel_binding
        )
        first = base64.b64encode(client.client_first()).decode()
        await self.ws.send_str(f'<auth xmlns="{ns.SASL}" mechanism="{mechanism}">{first}</auth>')
        challenge = await self.expect("challenge", ns.SASL)
        server_first = client.receive_server_first(base64.b64decode(challenge.text))
        salted = scram_crypto.salted_password(
            client.hash,
            scram_crypto.prepare_password(password),
            server_first.salt,
            server_first.iterations,
        )
        final = base64.b64encode(client.client_final(salted)).decode()
        await self.ws.send_str(f'<response xmlns="{ns.SASL}">{final}</response>')
        reply = await self.next_event()
        assert isinstance(reply, Element) and reply.xmlns == ns.SASL, reply
        if reply.name == "success":
            client.receive_server_final(base64.b64decode(reply.text))
        return reply

    async def bind(self, resource: str) -> str:
        await self.ws.send_str(
            f'<iq xmlns="{ns.CLIENT}" type="set" id="b1"><bind xmlns="{ns.BIND}">'
            f"<resource>{resource}</resource></bind></iq>"
        )
        reply = await self.expect("iq")
        assert reply.attrs.get("type") == "result", reply
        assert reply.xmlns == ns.CLIENT
        bind = reply.find("bind", ns.BIND)
        assert bind is not None
        self.jid = bind.find_text("jid") or ""
        return self.jid

    async def login(self, username: str, resource: str) -> str:
        """Open, SCRAM, restart, bind: the bound JID."""
        await self.open_stream()
        assert (await self.scram(username)).name == "success"
        await self.open_stream()
        return await self.bind(resource)

    def abort(self) -> None:
        """Kill the TCP connection under the WebSocket: no <close/>, no close frame."""
        connection = self.ws._response.connection
        assert connection is not None and connection.transport is not None
        connection.transport.abort()

    async def close(self) -> None:
        """<close/>, then the close handshake (whatever state the socket is in)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            if not self.ws.closed:
                await self.ws.send_str(CLOSE)
        with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
            await asyncio.wait_for(self.ws.close(), TIMEOUT)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def ws_url(node: Node) -> str:
    return f"http://127.0.0.1:{node.http_listeners[0].bound_port}/ws-xmpp"


async def connect(session: aiohttp.ClientSession, node: Node) -> WsClient:
    ws = await session.ws_connect(ws_url(node), protocols=("xmpp",))
    assert ws.protocol == "xmpp"
    return WsClient(ws)


async def test_a_websocket_client_logs_in_with_scram_and_chats_with_a_tcp_client(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=ws_listen())
    client = await connect(http_session, node)
    features = await client.open_stream()
    starttls = features.find("starttls", ns.TLS)
    assert starttls is None
    mechanisms = features.find("mechanisms", ns.SASL)
    assert mechanisms is not None
    offered = [m.text for m in mechanisms.elements()]
    assert "SCRAM-SHA-256" in offered and "PLAIN" not in offered
    assert (await client.scram("alice")).name == "success"
    features = await client.open_stream()
    assert features.find("bind", ns.BIND) is not None
    jid = await client.bind("web")
    assert jid == "alice@localhost/web"

    bob = await logged_in(node.c2s_port(0), "bob", "tcp")
    try:
        await client.ws.send_str(
            f'<message xmlns="{ns.CLIENT}" to="bob@localhost/tcp" type="chat">'
            "<body>hello over ws</body></message>"
        )
        got = await bob.expect("message")
        assert got.attrs["from"] == "alice@localhost/web"
        assert got.find_text("body") == "hello over ws"

        bob.send(
            "<message to='alice@localhost/web' type='chat'><body>hello over tcp</body></message>"
        )
        back = await client.expect("message")
        assert back.xmlns == ns.CLIENT
        assert back.attrs["from"] == "bob@localhost/tcp"
        assert back.find_text("body") == "hello over tcp"
    finally:
        await bob.close()

    await client.ws.send_str(CLOSE)
    closed = await client.next_event()
    assert isinstance(closed, StreamClosed)
    msg = await client.ws.receive(timeout=TIMEOUT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_handshake_without_the_xmpp_subprotocol_is_refused(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=ws_listen())
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http_session.ws_connect(ws_url(node))
    assert info.value.status == 400


async def test_malformed_xml_in_a_frame_ends_the_stream_and_the_node_keeps_serving(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=ws_listen())
    client = await connect(http_session, node)
    await client.open_stream()
    await client.ws.send_str("<message><body>oops</message>")
    error = await client.expect("error", ns.STREAM)
    conditions = [c.name for c in error.elements() if c.xmlns == ns.STREAMS_ERRORS]
    assert conditions[0] == "not-well-formed"
    closed = await client.next_event()
    assert isinstance(closed, StreamClosed)
    msg = await client.ws.receive(timeout=TIMEOUT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    again = await connect(http_session, node)
    await again.open_stream()
    assert (await again.scram("carol")).name == "success"
    await again.ws.close()


async def test_a_websocket_session_is_closed_with_system_shutdown_when_the_node_stops(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=ws_listen())
    client = await connect(http_session, node)
    await client.open_stream()
    assert (await client.scram("alice")).name == "success"
    await client.open_stream()
    await client.bind("web")
    stopping = asyncio.create_task(node.stop(timeout=5))
    error = await client.expect("error", ns.STREAM)
    assert error.find("system-shutdown", ns.STREAMS_ERRORS) is not None
    with pytest.raises((ConnectionError, StreamError)):
        while True:
            await client.next_event()
    await asyncio.wait_for(stopping, 10)
    assert not node.http_listeners


async def test_a_binary_frame_ends_the_connection(
    start_node: NodeFactory, http_session: aiohttp.ClientSession
) -> None:
    node = await start_node(listen=ws_listen())
    client = await connect(http_session, node)
    await client.open_stream()
    await client.ws.send_bytes(OPEN.encode())
    with pytest.raises(ConnectionError):
        while True:
            await client.next_event()
