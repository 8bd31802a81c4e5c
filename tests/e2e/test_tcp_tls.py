"""The c2s TCP connection over real sockets: STARTTLS edge cases, failed handshakes, a client
that stops reading, and what an ended connection leaves to the garbage collector."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import Counter
from dataclasses import replace

from meerkat.c2s.stanzas import PROCEED
from meerkat.listeners.connection import TcpConnection
from meerkat.server import Node
from meerkat.xmpp import ns
from meerkat.xmpp.jid import Jid

from .rawxmpp import RawClient, client_tls_context, header, logged_in
from .test_session_gc import collector_off, meerkat_garbage

TIMEOUT = 5.0


async def shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


class ManualTls:
    """A client's TLS over memory BIOs on a plain stream: it decides which bytes go together."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_tls_context().wrap_bio(
            self.incoming, self.outgoing, server_hostname="localhost"
        )

    def client_hello(self) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self.outgoing.read()

    async def finish_handshake(self, already: bytes) -> None:
        self.incoming.write(already)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.writer.write(self.outgoing.read())
                data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
                assert data, "server closed during the handshake"
                self.incoming.write(data)
        self.writer.write(self.outgoing.read())

    def send(self, text: str) -> None:
        self.tls.write(text.encode())
        self.writer.write(self.outgoing.read())

    async def receive_until(self, marker: bytes) -> bytes:
        out = b""
        while marker not in out:
            try:
                out += self.tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            assert data, "server closed the connection"
            self.incoming.write(data)
        return out


async def test_a_client_hello_in_the_same_packet_as_starttls_negotiates_tls(node: Node) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.c2s_port(0))
    writer.write(header().encode())
    features = b""
    while b"</stream:features>" not in features:
        features += await asyncio.wait_for(reader.read(65536), TIMEOUT)
    client = ManualTls(reader, writer)
    writer.write(f"<starttls xmlns='{ns.TLS}'/>".encode() + client.client_hello())
    got = b""
    while len(got) <= len(PROCEED):
        got += await asyncio.wait_for(reader.read(65536), TIMEOUT)
    assert got.startswith(PROCEED)
    await client.finish_handshake(got[len(PROCEED) :])
    client.send(header())
    features = await client.receive_until(b"</stream:features>")
    assert b"SCRAM-SHA-256-PLUS" in features and b"starttls" not in features
    await shut(writer)


async def test_a_failed_handshake_after_starttls_ends_the_session_quietly(node: Node) -> None:
    listener = node.c2s_listeners[0]
    with collector_off():
        client = await RawClient.connect(node.c2s_port(0))
        await client.open_stream()
        client.send(f"<starttls xmlns='{ns.TLS}'/>")
        await client.expect("proceed")
        client.send(b"\x16\x03\x01\x00\x04junk" + b"\x00" * 64)
        await client.wait_closed()
        await listener.wait_closed(timeout=5)
        assert not listener._connections
        client.parser.close()
        assert meerkat_garbage() == Counter()


async def test_a_direct_tls_connection_that_is_not_tls_leaves_nothing_behind(node: Node) -> None:
    listener = node.c2s_listeners[1]
    with collector_off():
        reader, writer = await asyncio.open_connection("127.0.0.1", node.c2s_port(1))
        writer.write(header().encode())  # plain XML to the TLS port
        answer = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        assert not answer.startswith(b"<")  # a TLS alert at most
        await shut(writer)
        await listener.wait_closed(timeout=5)
        assert not listener._connections
        assert meerkat_garbage() == Counter()


async def test_a_session_over_direct_tls_closed_with_close_notify_leaves_nothing_behind(
    node: Node,
) -> None:
    listener = node.c2s_listeners[1]
    with collector_off():
        client = await logged_in(node.c2s_port(1), "alice", "desk", direct_tls=True)
        client.send("<presence/>")
        await client.expect("presence")
        await client.close()  # closing tag, then TLS close_notify and FIN
        await listener.wait_closed(timeout=5)
        assert not listener._connections
        client.parser.close()
        assert meerkat_garbage() == Counter()


async def test_a_client_that_stops_reading_is_closed_once_its_output_backs_up(
    node: Node,
) -> None:
    listener = node.c2s_listeners[0]
    listener.settings = replace(listener.settings, max_output_buffer=64 * 1024)
    sessions = listener.node.sessions
    reader, writer = await asyncio.open_connection("127.0.0.1", node.c2s_port(0))
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    alice = RawClient(reader, writer)
    alice_jid = Jid.parse(await alice.login("alice", resource="slow"))
    (server_side,) = [s.transport for s in listener.node.live if s.peer[1] == alice_port(alice)]
    assert isinstance(server_side, TcpConnection)
    writer.transport.pause_reading()  # alice stops reading
    bob = await logged_in(node.c2s_port(0), "bob", "desk")
    body = "x" * 30000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    try:
        while sessions.user_sessions(alice_jid) and loop.time() < deadline:
            bob.send(f"<message to='{alice_jid}' type='chat'><body>{body}</body></message>" * 10)
            await asyncio.sleep(0.01)
        assert not sessions.user_sessions(alice_jid)  # closed as too slow
        assert server_side.buffered() > 0  # what alice never took is still there
    finally:
        writer.transport.abort()
        await bob.close()
    await asyncio.wait_for(lost(server_side), TIMEOUT)  # alice's reset ends the server's socket


async def lost(connection: TcpConnection) -> None:
    while connection.buffered():
        await asyncio.sleep(0.01)


def alice_port(client: RawClient) -> int:
    return int(client.writer.get_extra_info("sockname")[1])
