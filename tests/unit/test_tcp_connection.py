"""`TcpConnection`, the c2s protocol with its own TLS, driven byte by byte without sockets.

A `Pair` joins a server `TcpConnection` (on a fake socket transport) and a client
`ssl.SSLObject` over memory BIOs, and moves bytes between them only when told to, so a test
decides exactly which bytes arrive together. An `Inbox` takes the connection's input as a
negotiating session does: it pauses reading at each chunk until the test reads on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from meerkat import heap
from meerkat.listeners.certs import ensure_self_signed
from meerkat.listeners.connection import READ_SIZE, Phase, TcpConnection, TlsMaterial
from meerkat.listeners.tls import certificate_der, export_channel_binding, server_context
from meerkat.xmpp.sasl.channel_binding import available_channel_bindings

STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    cert, key = ensure_self_signed(Path(tmp_path_factory.mktemp("certs")), ["localhost"])
    return TlsMaterial(server_context(cert, key), certificate_der(cert))


class FakeSocket(asyncio.Transport):
    """What the server connection writes, and whether it paused reading or closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closed = False
        self.paused = False
        self.unsent = 0
        """What a peer that does not read leaves in the buffer (`get_write_buffer_size`)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed
        self.sent += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def take(self) -> bytes:
        data = bytes(self.sent)
        self.sent.clear()
        return data


class Inbox:
    """The session's side: the connection's sink, pausing reading at each chunk."""

    def __init__(self, conn: TcpConnection) -> None:
        self.conn = conn
        self.chunks: list[bytes] = []
        conn.start_reading(self)

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)
        self.conn.pause_reading()

    def take(self) -> bytes:
        """The chunk delivered (b"": the end); reading stays paused."""
        assert len(self.chunks) == 1, self.chunks
        return self.chunks.pop()

    def read(self) -> bytes:
        """Resume reading (the last chunk is processed) and take the next chunk."""
        self.conn.resume_reading()
        return self.take()

    async def wait(self, timeout: float) -> bytes:
        """The next chunk, once something delivers it."""
        async with asyncio.timeout(timeout):
            while not self.chunks:
                await asyncio.sleep(0.01)
        return self.take()


class Pair:
    """A server `TcpConnection` and a TLS client, joined by hand."""

    def __init__(self, material: TlsMaterial, *, direct_tls: bool = False) -> None:
        self.socket = FakeSocket()
        self.made: list[TcpConnection] = []
        self.server = TcpConnection(material, 5.0, self.made.append, direct_tls=direct_tls)
        self.server.connection_made(self.socket)
        self.inbox = Inbox(self.server)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.c_in, self.c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = ctx.wrap_bio(self.c_in, self.c_out, server_hostname="localhost")

    def client_hello(self) -> bytes:
        with pytest.raises(ssl.SSLWantReadError):
            self.client.do_handshake()
        return self.c_out.read()

    def to_client(self) -> None:
        self.c_in.write(self.socket.take())

    def handshake(self) -> None:
        """Run the client's handshake to its end."""
        self.server.data_received(self.client_hello())
        self.finish_handshake()

    def finish_handshake(self) -> None:
        """Run the client's handshake to its end once the server has its ClientHello."""
        for _ in range(5):
            self.to_client()
            try:
                self.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                self.server.data_received(self.c_out.read())
                self.to_client()
                return
            self.server.data_received(self.c_out.read())
        raise AssertionError("handshake did not finish")

    def send_tls(self, data: bytes) -> None:
        self.client.write(data)
        self.server.data_received(self.c_out.read())

    def received_tls(self) -> bytes:
        self.to_client()
        out = b""
        while True:
            try:
                out += self.client.read(65536)
            except ssl.SSLWantReadError:
                return out


def garbage_of_type(kind: type) -> int:
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(1 for obj in gc.garbage if isinstance(obj, kind))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_plain_bytes_reach_the_session_and_replies_go_out_in_the_clear(
    material: TlsMaterial,
) -> None:
    pair = Pair(material)
    assert pair.made == [pair.server] and pair.server.can_starttls and not pair.server.secure
    pair.server.data_received(b"<stream:stream>")
    assert pair.inbox.take() == b"<stream:stream>"
    pair.server.write(b"<stream:features/>")
    assert pair.socket.take() == b"<stream:features/>"


async def test_starttls_then_the_stream_goes_over_tls(material: TlsMaterial) -> None:
    pair = Pair(material)
    pair.server.data_received(STARTTLS)
    assert pair.inbox.take() == STARTTLS
    pair.server.write(b"<proceed/>")
    assert pair.socket.take() == b"<proceed/>"
    await pair.server.start_tls()
    pair.handshake()
    assert pair.server.secure and not pair.server.can_starttls
    assert pair.server.tls_version == "TLSv1.3"
    bindings = pair.server.channel_bindings()
    assert list(bindings) == ["tls-exporter", "tls-server-end-point"]
    assert pair.server._sslobj is not None
    assert dict(bindings) == available_channel_bindings(
        tls_version=pair.server._sslobj.version(),
        exporter=export_channel_binding(pair.server._sslobj),
        certificate_der=material.certificate_der,
    )
    pair.send_tls(b"<stream:stream to='localhost'>")
    assert pair.inbox.read() == b"<stream:stream to='localhost'>"
    pair.server.write(b"<stream:features/>")
    assert pair.received_tls() == b"<stream:features/>"


async def test_a_client_hello_sent_right_behind_starttls_goes_to_tls_not_to_the_parser(
    material: TlsMaterial,
) -> None:
    pair = Pair(material)
    hello = pair.client_hello()
    pair.server.data_received(STARTTLS + b" " + hello)  # one packet
    assert pair.inbox.take() == STARTTLS + b" "
    pair.server.write(b"<proceed/>")
    assert pair.socket.take().startswith(b"<proceed/>")
    await pair.server.start_tls()  # the held ClientHello goes to TLS now
    pair.finish_handshake()
    assert pair.server.tls_version is not None
    pair.send_tls(b"<stream:stream>")
    assert pair.inbox.read() == b"<stream:stream>"


async def test_plaintext_sent_behind_starttls_never_passes_for_tls_input(
    material: TlsMaterial,
) -> None:
    pair = Pair(material)
    pair.server.data_received(STARTTLS)
    assert pair.inbox.take() == STARTTLS
    pair.server.data_received(b"<stream:stream injected='yes'>")  # before the handshake
    await pair.server.start_tls()
    pair.handshake()
    pair.send_tls(b"<stream:stream>")
    assert pair.inbox.read() == b"<stream:stream>"


async def test_tls_bytes_without_starttls_reach_the_parser_which_refuses_them(
    material: TlsMaterial,
) -> None:
    pair = Pair(material)
    hello = pair.client_hello()
    pair.server.data_received(hello)
    assert pair.inbox.take() == hello


async def test_direct_tls_handshakes_from_the_first_byte(material: TlsMaterial) -> None:
    pair = Pair(material, direct_tls=True)
    assert pair.server.secure and not pair.server.can_starttls
    pair.server.write(b"<early/>")  # written during the handshake: sent once it is done
    assert pair.socket.take() == b""
    pair.handshake()
    assert pair.received_tls() == b"<early/>"
    pair.send_tls(b"<a/>")
    pair.send_tls(b"<b/>")
    pair.send_tls(b"<c/>")
    assert pair.inbox.take() == b"<a/>"
    assert pair.inbox.read() == b"<b/><c/>"  # held together while the session was busy


async def test_a_failed_handshake_closes_quietly_and_the_session_reads_the_end(
    material: TlsMaterial, caplog: pytest.LogCaptureFixture
) -> None:
    pair = Pair(material, direct_tls=True)
    with caplog.at_level(logging.DEBUG, logger="meerkat.listeners.connection"):
        pair.server.data_received(b"\x16\x03\x01\x00\x05hello, not TLS at all")
    assert pair.socket.closed
    assert pair.inbox.take() == b""
    assert [r.getMessage().split()[0] for r in caplog.records] == ["c2s_tls_failed"]
    assert all(r.exc_info is None and r.levelno <= logging.INFO for r in caplog.records)


async def test_a_handshake_that_takes_too_long_is_closed(material: TlsMaterial) -> None:
    pair = Pair(material, direct_tls=True)
    pair.server._handshake_timeout = 0.05
    pair.server._cancel_timer()
    pair.server._timer = asyncio.get_running_loop().call_later(
        0.05, pair.server._on_handshake_timeout
    )
    assert await pair.inbox.wait(2) == b""
    assert pair.socket.closed


async def test_close_notify_from_the_client_ends_the_input(material: TlsMaterial) -> None:
    pair = Pair(material, direct_tls=True)
    pair.handshake()
    pair.send_tls(b"</stream:stream>")
    with pytest.raises(ssl.SSLWantReadError):
        pair.client.unwrap()
    pair.server.data_received(pair.c_out.read())
    assert pair.inbox.take() == b"</stream:stream>"
    assert pair.inbox.read() == b""  # after the input held meanwhile
    pair.server.write(b"</stream:stream>")  # the session's closing tag still goes out
    assert pair.received_tls() == b"</stream:stream>"
    pair.server.close()
    assert pair.socket.closed
    pair.to_client()
    pair.client.unwrap()  # the server's close_notify arrived: the client's unwrap completes


async def test_input_held_while_the_session_pauses_is_bounded_by_pausing_the_socket(
    material: TlsMaterial,
) -> None:
    pair = Pair(material, direct_tls=True)
    pair.handshake()
    pair.server.pause_reading()
    chunk = b"<message><body>" + b"x" * 16000 + b"</body></message>"
    sent = 0
    while not pair.socket.paused:
        pair.send_tls(chunk)
        sent += len(chunk)
    assert sent >= READ_SIZE and not pair.inbox.chunks
    data = pair.inbox.read()
    assert len(data) == sent and not pair.socket.paused


async def test_input_that_arrived_before_the_session_reads_comes_first_in_order() -> None:
    sock = FakeSocket()
    conn = TcpConnection(None, 5.0)
    conn.connection_made(sock)
    conn.data_received(b"<a/>")
    conn.data_received(b"<b/>")
    conn.eof_received()
    got: list[bytes] = []
    conn.start_reading(got.append)
    conn.data_received(b"<late/>")  # after the end: not read
    assert got == [b"<a/><b/>", b""]


async def test_buffered_is_what_the_socket_could_not_send(material: TlsMaterial) -> None:
    pair = Pair(material)
    pair.socket.unsent = 123_456  # a peer that stopped reading
    assert pair.server.buffered() == 123_456


async def test_a_lost_connection_ends_the_input_and_leaves_no_cycle(
    material: TlsMaterial,
) -> None:
    gc.collect()
    pair = Pair(material, direct_tls=True)
    pair.handshake()
    pair.server.connection_lost(ConnectionResetError())
    assert pair.inbox.take() == b""  # an error ends the stream as the client's close does
    assert pair.server._phase is Phase.CLOSED
    pair.server.resume_reading()
    assert pair.inbox.chunks == []  # the end comes once
    pair.server.write(b"<late/>")  # dropped, not raised
    del pair
    assert garbage_of_type(TcpConnection) == 0


async def test_a_connection_failing_its_handshake_leaves_no_cycle(material: TlsMaterial) -> None:
    gc.collect()
    pair = Pair(material)
    pair.server.data_received(STARTTLS)
    pair.inbox.take()
    await pair.server.start_tls()
    pair.server.data_received(b"\x16\x03\x01\x00\x01garbage")
    assert pair.inbox.read() == b""
    pair.server.connection_lost(None)
    del pair
    assert garbage_of_type(TcpConnection) == 0


async def test_a_proxy_header_split_across_reads_names_the_peer_and_keeps_what_follows() -> None:
    sock = FakeSocket()
    conn = TcpConnection(None, 5.0, proxy_protocol=True)
    conn.connection_made(sock)
    inbox = Inbox(conn)
    header = b"PROXY TCP4 192.0.2.7 10.0.0.1 40123 5222\r\n"
    conn.data_received(header[:9])
    assert conn.peer == ("127.0.0.1", 40000)
    conn.data_received(header[9:] + b"<stream:stream>")
    assert conn.peer == ("192.0.2.7", 40123)
    assert inbox.take() == b"<stream:stream>"
    conn.data_received(b"PROXY TCP4 198.51.100.1 10.0.0.1 1 2\r\n")  # only the first counts
    assert conn.peer == ("192.0.2.7", 40123)


async def test_a_connection_without_a_proxy_header_is_closed_before_anything_is_read() -> None:
    sock = FakeSocket()
    conn = TcpConnection(None, 5.0, proxy_protocol=True)
    conn.connection_made(sock)
    inbox = Inbox(conn)
    conn.data_received(b"<?xml version='1.0'?><stream:stream>")
    assert sock.closed
    assert inbox.take() == b""


def malloc_in_use() -> int:
    """glibc's bytes in use (heap and mmapped), where OpenSSL's buffers live."""
    figures = heap.figures()
    assert figures is not None, "glibc's mallinfo2 is needed for this measurement"
    return figures["heap_used"] + figures["mmapped"]


async def test_a_64_kib_exchange_leaves_no_64_kib_tls_buffers_behind(
    material: TlsMaterial,
) -> None:
    """Memory BIOs keep their largest buffer for good: 64 KiB in and out once must not
    cost the connection ~170 KiB for the rest of its life. The test's client side moves
    its bytes in 4 KiB slices too, so that only the server's buffers can grow."""
    big = bytes(range(256)) * 256  # 64 KiB
    pairs = [Pair(material, direct_tls=True) for _ in range(30)]
    for pair in pairs:
        pair.handshake()
    gc.collect()
    before = malloc_in_use()
    for pair in pairs:
        wire = bytearray()
        for start in range(0, len(big), 4096):
            pair.client.write(big[start : start + 4096])
            wire += pair.c_out.read()
        pair.server.pause_reading()  # the session is busy: the records' plaintext is held
        pair.server.data_received(bytes(wire))  # one socket read of ~64 KiB of records
        assert pair.inbox.read() == big
        pair.server.write(big)
        sent = pair.socket.take()
        echoed = bytearray()
        for start in range(0, len(sent), 4096):
            pair.c_in.write(sent[start : start + 4096])
            with contextlib.suppress(ssl.SSLWantReadError):
                while chunk := pair.client.read(65536):
                    echoed += chunk
        assert echoed == big
        del wire, sent, echoed
    gc.collect()
    kept = (malloc_in_use() - before) / len(pairs)
    # Measured: ~180 KiB per connection with whole writes, ~37 KiB (both sides' BIOs, each
    # ~5 KiB, and the client's own state included) in slices.
    assert kept < 64 * 1024, f"{kept:.0f} bytes kept per connection"
