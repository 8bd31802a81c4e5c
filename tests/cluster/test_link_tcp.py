"""Real loopback TCP links: authentication, refusal of bad input, and that the node survives."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meerkat.cluster import (
    Cluster,
    ClusterConfig,
    LinkConfig,
    NodeEvent,
    NodeEventKind,
    PeerUnavailable,
    wire,
)
from meerkat.cluster.discovery import DiscoveryConfig
from meerkat.cluster.link import split_address

LINKS = LinkConfig(
    heartbeat_interval=0.2, heartbeat_misses=10, handshake_timeout=0.5, connect_timeout=2.0
)

MakeNode = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def make_node() -> AsyncIterator[MakeNode]:
    started: list[Cluster] = []

    async def make(
        name: str, secret: bytes = b"cluster-secret", link: LinkConfig = LINKS, **kw: object
    ) -> Cluster:
        c = Cluster(
            ClusterConfig(
                node_name=name,
                secret=secret,
                listen_address="127.0.0.1:0",
                link=link,
                discovery=DiscoveryConfig(initial_interval=0.1, error_interval=0.1),
            ),
            **kw,
        )  # type: ignore[arg-type]
        await c.start()
        started.append(c)
        return c

    try:
        yield make
    finally:
        for c in started:
            await c.stop()


async def raw_connection(c: Cluster) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = split_address(c.address)
    return await asyncio.open_connection(host, port)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 3.0) -> bool:
    """Read until EOF; True if the server closed the connection in time."""

    async def drain() -> None:
        while await reader.read(65536):
            pass

    with contextlib.suppress(ConnectionError, OSError):
        await asyncio.wait_for(drain(), within)
    return True


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def assert_still_serving(c: Cluster, make_node: MakeNode, name: str) -> None:
    other = await make_node(name)
    other.on_call("ping", lambda peer, payload: "pong")
    await c.node.connect(other.address)
    assert await c.call(name, "ping", None) == "pong"


async def test_nodes_with_the_same_secret_link_and_exchange_calls(make_node: MakeNode) -> None:
    a = await make_node("a")
    b = await make_node("b")
    b.on_call("echo", lambda peer, payload: [peer.name, payload])
    assert await a.node.connect(b.address) == b.id
    assert await a.call("b", "echo", ("x", 1)) == ["a", ("x", 1)]
    await asyncio.sleep(5 * LINKS.heartbeat_interval)
    assert a.node.is_up("b") and b.node.is_up("a")  # heartbeats keep an idle link alive


async def test_wrong_secret_is_refused_and_logged(
    make_node: MakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    a = await make_node("a")
    intruder = await make_node("x", secret=b"wrong")
    with caplog.at_level(logging.WARNING), pytest.raises(PeerUnavailable):
        await intruder.node.connect(a.address)
    await asyncio.sleep(0.05)
    assert not a.node.is_up("x")
    assert any("cluster_link_refused" in r.getMessage() for r in caplog.records)
    await assert_still_serving(a, make_node, "b")


async def test_garbage_bytes_close_the_connection(make_node: MakeNode) -> None:
    a = await make_node("a")
    reader, writer = await raw_connection(a)
    writer.write(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    assert await closed_by_server(reader)
    await close(writer)
    await assert_still_serving(a, make_node, "b")


async def test_oversize_length_prefix_closes_the_connection(make_node: MakeNode) -> None:
    a = await make_node("a")
    reader, writer = await raw_connection(a)
    writer.write(b"\xff\xff\xff\xff")
    await writer.drain()
    assert await closed_by_server(reader)
    await close(writer)
    await assert_still_serving(a, make_node, "b")


async def test_large_frame_before_authentication_closes_the_connection(
    make_node: MakeNode,
) -> None:
    a = await make_node("a")
    reader, writer = await raw_connection(a)
    writer.write((64 * 1024).to_bytes(4, "big") + b"\x00" * 1024)
    await writer.drain()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await closed_by_server(reader)
    assert loop.time() - start < LINKS.handshake_timeout  # refused at once, not timed out
    await close(writer)
    await assert_still_serving(a, make_node, "b")


async def test_silent_connection_is_dropped_after_the_handshake_timeout(
    make_node: MakeNode,
) -> None:
    a = await make_node("a")
    reader, writer = await raw_connection(a)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await closed_by_server(reader, within=LINKS.handshake_timeout + 2)
    assert loop.time() - start >= LINKS.handshake_timeout * 0.9
    await close(writer)
    await assert_still_serving(a, make_node, "b")


async def test_stopped_peer_is_seen_down_and_its_calls_fail(make_node: MakeNode) -> None:
    a = await make_node("a")
    b = await make_node("b")
    await a.node.connect(b.address)
    await b.stop()
    for _ in range(100):
        if not a.node.is_up("b"):
            break
        await asyncio.sleep(0.02)
    assert not a.node.is_up("b")
    with pytest.raises(PeerUnavailable):
        await a.call("b", "x", None)


async def test_a_peer_that_stops_reading_is_dropped_when_the_send_buffer_is_full(
    make_node: MakeNode,
) -> None:
    """A linked peer that never reads again: what the socket cannot take piles up in the
    transport until `send_buffer_size`, then the link closes (not unbounded memory)."""
    hello = wire.Hello(wire.PROTOCOL_VERSION, "meerkat", "stuck", "boot", b"n" * 16)
    done = asyncio.Event()

    async def stuck_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hs = wire.Handshake(secret=b"cluster-secret", local=hello, initiator=False)
        decoder = wire.FrameDecoder()
        writer.write(hs.start())
        while hs.state is not wire.HandshakeState.AWAIT_DECISION:
            decoder.feed(await reader.read(4096))
            for msg in decoder.messages():
                writer.write(hs.receive(msg))
        writer.write(hs.accept())
        await done.wait()  # linked, and never reads again
        await close(writer)

    server = await asyncio.start_server(stuck_peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    a = await make_node("a", link=dataclasses.replace(LINKS, send_buffer_size=1 << 20))
    events: list[NodeEvent] = []
    a.subscribe(events.append)
    try:
        await a.node.connect(f"127.0.0.1:{port}")
        chunk = b"x" * 65536
        with pytest.raises(PeerUnavailable):
            for _ in range(2000):  # 128 MiB: far more than the socket buffers take
                a.send("stuck", "x", chunk)
                await asyncio.sleep(0)  # one frame per turn: the transport gets each
        for _ in range(100):
            if events[-1].kind is NodeEventKind.DOWN:
                break
            await asyncio.sleep(0.01)
        assert (events[-1].kind, events[-1].reason) == (NodeEventKind.DOWN, "send_queue_overflow")
    finally:
        done.set()
        server.close()
        await server.wait_closed()


async def test_replicated_table_over_tcp(make_node: MakeNode) -> None:
    nodes = [await make_node(f"n{i}") for i in range(3)]
    for x in nodes:
        x.create_table("t")
    for x in nodes[1:]:
        await nodes[0].node.connect(x.address)
    await nodes[1].node.connect(nodes[2].address)
    for x in nodes[1:]:
        await nodes[0].tables.join("t", x.id)
    await nodes[2].table("t").insert(("k",), {"v": b"\x00"})
    assert all(x.table("t").get(("k",)) == {"v": b"\x00"} for x in nodes)


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1; server and client contexts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meerkat-cluster")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


async def test_links_work_over_tls(make_node: MakeNode, tmp_path: Path) -> None:
    server, client = tls_contexts(tmp_path)
    a = await make_node("a", server_ssl=server, client_ssl=client)
    b = await make_node("b", server_ssl=server, client_ssl=client)
    b.on_call("echo", lambda peer, payload: payload)
    await a.node.connect(b.address)
    assert await a.call("b", "echo", b"over tls") == b"over tls"


async def test_plain_client_cannot_link_to_a_tls_node(make_node: MakeNode, tmp_path: Path) -> None:
    server, client = tls_contexts(tmp_path)
    a = await make_node("a", server_ssl=server, client_ssl=client)
    plain = await make_node("p")
    with pytest.raises(PeerUnavailable):
        await plain.node.connect(a.address)
    assert not a.node.is_up("p")


async def test_file_discovery_over_tcp_joins_three_nodes(
    make_node: MakeNode, tmp_path: Path
) -> None:
    from meerkat.cluster import FileBackend

    # Heartbeats at a relaxed pace: a loaded test machine must not cause spurious node-downs.
    relaxed = LinkConfig(heartbeat_interval=1.0, heartbeat_misses=5)
    nodes = [await make_node(f"n{i}", link=relaxed) for i in range(3)]
    path = tmp_path / "nodes.txt"
    path.write_text("\n".join(c.address for c in nodes) + "\n")
    loops = []
    for c in nodes:
        c.create_table("session")
        loops.append(c.start_discovery(FileBackend(path)))
    names = ["n0", "n1", "n2"]
    for _ in range(500):
        # A node names a discovered address once its own check has dialed it, which may
        # come after the others have joined it (systemInfo's discoveredNodes).
        if all(c.table("session").nodes() == names for c in nodes) and all(
            d.discovered_names() == names for d in loops
        ):
            break
        await asyncio.sleep(0.02)
    info = await nodes[0].system_info()
    assert all(c.table("session").nodes() == names for c in nodes), info
    assert info["joinedNodes"] == names and info["discoveredNodes"] == names
    assert info["unavailableNodes"] == []
