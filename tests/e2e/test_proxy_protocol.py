"""c2s listeners behind a load balancer: `proxy_protocol = true` takes the client's address
from the PROXY header (v1 or v2) a proxy puts first, and refuses connections without one."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from meerkat.listeners.proxy_header import V2_SIGNATURE
from meerkat.server import Node
from ports import free_port

from .conftest import ClientFactory, NodeFactory

Header = Callable[[tuple[str, int]], bytes]


def v1_header(peer: tuple[str, int]) -> bytes:
    return f"PROXY TCP4 192.0.2.7 127.0.0.1 {peer[1]} 5222\r\n".encode()


def v2_header(peer: tuple[str, int]) -> bytes:
    addrs = socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1")
    body = addrs + struct.pack("!HH", peer[1], 5222)
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(body)) + body


@asynccontextmanager
async def load_balancer(upstream: int, header: Header) -> AsyncIterator[int]:
    """A TCP proxy on loopback that opens each upstream connection with `header`."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        up_writer.write(header(writer.get_extra_info("peername")))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    port = free_port()
    server = await asyncio.start_server(accept, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()


def proxied_listeners() -> dict[str, object]:
    common = {"ip_address": "127.0.0.1", "shaper": "none", "proxy_protocol": True}
    return {
        "c2s": [
            {"port": free_port(), **common},
            {"port": free_port(), **common, "tls": {"mode": "tls"}},
        ]
    }


def session_ips(node: Node) -> set[str]:
    return {str(record.info.get("ip")) for record in node.sessions.all_sessions()}


async def test_a_client_behind_a_v1_proxy_is_recorded_with_its_own_address(
    start_node: NodeFactory, xmpp_client: ClientFactory
) -> None:
    node = await start_node(listen=proxied_listeners())
    async with load_balancer(node.c2s_listeners[0].bound_port, v1_header) as port:
        await xmpp_client("alice@localhost/phone", port)
        assert session_ips(node) == {"192.0.2.7"}


async def test_a_client_behind_a_v2_proxy_on_direct_tls_is_recorded_with_its_own_address(
    start_node: NodeFactory, xmpp_client: ClientFactory
) -> None:
    node = await start_node(listen=proxied_listeners())
    async with load_balancer(node.c2s_listeners[1].bound_port, v2_header) as port:
        await xmpp_client("bob@localhost/laptop", port, direct_tls=True)
        assert session_ips(node) == {"198.51.100.9"}


async def test_a_connection_without_a_proxy_header_is_closed_unanswered(
    start_node: NodeFactory,
) -> None:
    node = await start_node(listen=proxied_listeners())
    reader, writer = await asyncio.open_connection("127.0.0.1", node.c2s_listeners[0].bound_port)
    writer.write(
        b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
