"""One authenticated, FIFO, heart-beaten connection between two cluster nodes.

This is the only cluster module that owns sockets (`TcpTransport`). A `Link` runs over
any byte stream pair with the asyncio StreamReader/StreamWriter shape, which lets
tests use in-memory pipes (`memnet.py`) with a manual clock.

Hard parts:
- a half-open or silent peer: the handshake has a deadline, and after it a peer
  that sends nothing for `heartbeat_misses` intervals is declared dead, counted in our
  own heartbeat ticks: a process starved of CPU (many workers on few cores) wakes late,
  and what the peer sent meanwhile is still unread in the socket, so one late tick alone
  must not condemn the peer; and a silent peer whose kernel still acknowledges our
  heartbeats is busy, not gone (`tcpinfo`): it gets `busy_peer_timeout`;
- a slow peer: what waits for the socket is bounded (frames of the current loop turn,
  bytes the transport could not send yet); overflowing closes the link with reason
  `send_queue_overflow` instead of buffering without limit;
- cost per message: the frames queued during one turn of the event loop leave in one
  transport write at the end of the turn (a callback, not a writer task), so many small
  messages (table ops, acks) share one system call and no task switch is spent on them.
- bad input (garbage, wrong secret, oversize frame) closes only that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import tcpinfo, wire
from .clock import Clock, with_timeout
from .errors import (
    ClusterError,
    HandshakeAbandoned,
    HandshakeError,
    HandshakeRejected,
    LinkClosed,
    ProtocolError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Knobs of every link; tests shrink them."""

    heartbeat_interval: float = 1.0
    """Seconds between heartbeats sent on an idle or busy link."""
    heartbeat_misses: int = 3
    """The peer is declared down after this many intervals without any frame from it."""
    busy_peer_timeout: float = 30.0
    """...unless its TCP stack still acknowledges our heartbeats (its process is alive but
    busy: a mass logout on a crowded machine): then after this many seconds of silence."""
    handshake_timeout: float = 5.0
    """A connection that does not finish the handshake in time is closed."""
    connect_timeout: float = 5.0
    """TCP connect (and TLS) deadline when dialing a peer."""
    send_queue_size: int = 10_000
    """Frames queued in one loop turn at most; a peer that cannot keep up is disconnected."""
    send_buffer_size: int = 2 * wire.DEFAULT_MAX_FRAME
    """Bytes written but not yet taken by the socket at most (then: disconnected)."""
    max_frame: int = wire.DEFAULT_MAX_FRAME
    """Largest accepted frame in bytes."""


class ByteReader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class WriteBuffer(Protocol):
    def get_write_buffer_size(self) -> int: ...


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    @property
    def transport(self) -> WriteBuffer: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


MessageHandler = Callable[["Link", Any], None]


class Link:
    """An established link. Create with `establish`; drive with `run`."""

    def __init__(
        self,
        reader: ByteReader,
        writer: ByteWriter,
        decoder: wire.FrameDecoder,
        *,
        local: wire.Hello,
        peer: wire.Hello,
        outbound: bool,
        config: LinkConfig,
        clock: Clock,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self.local = local
        self.peer = peer
        self.outbound = outbound
        self.initiator = local.node if outbound else peer.node
        self._config = config
        self._clock = clock
        self._encoder = wire.FrameEncoder()
        self._pending: list[bytes] = []
        """Frames of this loop turn, written by `_flush` at its end."""
        self._closed = asyncio.Event()
        self.close_reason: str | None = None
        self._last_rx = clock.monotonic()
        self._rx_frames = 0
        self._busy_logged = False

    def __repr__(self) -> str:
        return f"<Link {self.local.node}->{self.peer.node} initiator={self.initiator}>"

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    def send_nowait(self, msg: Any) -> None:
        """Queue one message; FIFO. Raises LinkClosed when closed or overflowing."""
        if self._closed.is_set():
            raise LinkClosed(self.close_reason or "closed")
        frame = self._encoder.encode(msg)
        if len(frame) - 4 > self._config.max_frame:
            raise ClusterError(f"message of {len(frame)} bytes exceeds the frame limit")
        pending = self._pending
        if len(pending) >= self._config.send_queue_size:
            self._overflow(f"frames={len(pending)}")
        pending.append(frame)
        if len(pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        frames, self._pending = self._pending, []
        if self._closed.is_set() or not frames:
            return
        try:
            self._writer.write(frames[0] if len(frames) == 1 else b"".join(frames))
            buffered = self._writer.transport.get_write_buffer_size()
        except (ConnectionError, OSError, RuntimeError) as exc:
            self.close(f"connection_error: {exc.__class__.__name__}")
            return
        if buffered > self._config.send_buffer_size:
            with contextlib.suppress(LinkClosed):
                self._overflow(f"bytes={buffered}")

    def _overflow(self, size: str) -> None:
        log.warning("cluster_link_overflow peer=%s %s", self.peer.node, size)
        self.close("send_queue_overflow")
        raise LinkClosed("send_queue_overflow")

    def close(self, reason: str) -> None:
        """Close (idempotent); `run` returns soon after."""
        if not self._closed.is_set():
            self.close_reason = reason
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def run(self, on_message: MessageHandler) -> str:
        """Pump frames until the link closes; returns the close reason."""
        tasks = [
            asyncio.create_task(self._read_loop(on_message)),
            asyncio.create_task(self._heartbeat_loop()),
        ]
        try:
            await self._closed.wait()
        finally:
            # Close the stream first, synchronously: the awaits below may be cancelled.
            self.abort("stopped")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close_writer(self._writer)
        return self.close_reason or "closed"

    def abort(self, reason: str) -> None:
        """Close now, dropping unsent frames (shutdown, cleanup)."""
        self.close(reason)
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self._writer.close()

    async def _read_loop(self, on_message: MessageHandler) -> None:
        try:
            while True:
                for msg in self._decoder.messages():
                    self._last_rx = self._clock.monotonic()
                    self._rx_frames += 1
                    if msg == [wire.HEARTBEAT]:
                        continue
                    on_message(self, msg)
                    if self._closed.is_set():
                        return
                data = await self._reader.read(65536)
                if not data:
                    self.close("peer_closed")
                    return
                self._decoder.feed(data)
        except ProtocolError as exc:
            log.warning("cluster_link_bad_frame peer=%s error=%s", self.peer.node, exc)
            self.close("protocol_error")
        except (ConnectionError, OSError) as exc:
            self.close(f"connection_error: {exc.__class__.__name__}")
        except Exception:
            log.exception("cluster_link_reader_failed peer=%s", self.peer.node)
            self.close("internal_error")

    async def _heartbeat_loop(self) -> None:
        interval = self._config.heartbeat_interval
        misses = self._config.heartbeat_misses
        quiet_ticks, seen = 0, self._rx_frames
        while True:
            await self._clock.sleep(interval)
            quiet_ticks = quiet_ticks + 1 if self._rx_frames == seen else 0
            if not quiet_ticks:
                self._busy_logged = False
            seen = self._rx_frames
            silent = self._clock.monotonic() - self._last_rx
            if quiet_ticks >= misses and silent > interval * misses:
                if silent < self._config.busy_peer_timeout and self._acked(interval * misses):
                    self._busy_peer(silent)
                else:
                    log.warning(
                        "cluster_link_heartbeat_timeout peer=%s silent=%.1f",
                        self.peer.node, silent,
                    )  # fmt: skip
                    self.close("heartbeat_timeout")
                    return
            try:
                self.send_nowait([wire.HEARTBEAT])
            except LinkClosed:
                return

    def _acked(self, window: float) -> bool:
        """The peer's kernel acknowledged something of ours within `window` seconds."""
        ms = tcpinfo.ms_since_peer_ack(self._writer)
        return ms is not None and ms < window * 1000

    def _busy_peer(self, silent: float) -> None:
        if not self._busy_logged:
            self._busy_logged = True
            log.info("cluster_link_peer_busy peer=%s silent=%.1f", self.peer.node, silent)


async def _close_writer(writer: ByteWriter) -> None:
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
        pass


Decide = Callable[[wire.Hello], str | None]
"""Acceptor's verdict on a proven peer: None to accept, else a reject reason."""


async def establish(
    reader: ByteReader,
    writer: ByteWriter,
    *,
    secret: bytes,
    local: wire.Hello,
    outbound: bool,
    config: LinkConfig,
    clock: Clock,
    decide: Decide,
    on_peer_hello: Callable[[wire.Hello], None] | None = None,
) -> Link:
    """Run the handshake under `config.handshake_timeout`; the link is not yet running.

    `on_peer_hello` (initiator) may raise to abandon the dial once the peer's name is
    known; it runs before our proof is sent, so the peer cannot accept an abandoned dial.
    On failure the stream is closed and a HandshakeError (or TimeoutError) raised.
    """
    hs = wire.Handshake(secret=secret, local=local, initiator=outbound)
    decoder = wire.FrameDecoder(min(config.max_frame, wire.HANDSHAKE_MAX_FRAME))

    async def run_handshake() -> None:
        writer.write(hs.start())
        await writer.drain()
        while hs.state is not wire.HandshakeState.ESTABLISHED:
            ok, msg = decoder.next_message()
            if not ok:
                data = await reader.read(65536)
                if not data:
                    if not outbound and hs.state is wire.HandshakeState.AWAIT_PROOF:
                        raise HandshakeAbandoned(
                            f"{hs.peer.node if hs.peer else '?'} closed the connection"
                            " during handshake, before its proof (its dial gave way)"
                        )
                    raise HandshakeError("connection closed during handshake")
                decoder.feed(data)
                continue
            out = hs.receive(msg)
            assert hs.peer is not None or hs.state is wire.HandshakeState.AWAIT_HELLO
            if hs.state is wire.HandshakeState.AWAIT_PROOF and on_peer_hello and hs.peer:
                on_peer_hello(hs.peer)  # before our proof leaves: an abandoned dial never links
            if out:
                writer.write(out)
            if hs.state is wire.HandshakeState.AWAIT_DECISION:
                assert hs.peer is not None
                reason = decide(hs.peer)
                if reason is None:
                    writer.write(hs.accept())
                else:
                    writer.write(hs.reject(reason))
                    await writer.drain()
                    raise HandshakeRejected(reason)
            await writer.drain()

    try:
        await with_timeout(clock, run_handshake(), config.handshake_timeout)
    except TimeoutError:
        await _close_writer(writer)
        raise HandshakeError("handshake timeout") from None
    except BaseException:
        await _close_writer(writer)
        raise
    assert hs.peer is not None
    decoder.max_frame = config.max_frame
    return Link(
        reader,
        writer,
        decoder,
        local=local,
        peer=hs.peer,
        outbound=outbound,
        config=config,
        clock=clock,
    )


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"cluster address {address!r} is not host:port")
    return host.strip("[]"), int(port)


InboundHandler = Callable[[ByteReader, ByteWriter], None]


class Listener(Protocol):
    address: str

    async def close(self) -> None: ...


class TcpListener:
    def __init__(self, server: asyncio.Server, address: str) -> None:
        self._server = server
        self.address = address

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


class TcpTransport:
    """TCP (optionally TLS) streams for links; the node owns every task."""

    def __init__(
        self,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._connect_timeout = connect_timeout

    async def listen(self, address: str, on_connection: InboundHandler) -> Listener:
        host, port = split_address(address)

        def accepted(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            on_connection(r, w)

        server = await asyncio.start_server(accepted, host, port, ssl=self._server_ssl)
        sock = server.sockets[0].getsockname()
        bound = f"[{sock[0]}]:{sock[1]}" if ":" in sock[0] else f"{sock[0]}:{sock[1]}"
        return TcpListener(server, bound)

    async def connect(self, address: str) -> tuple[ByteReader, ByteWriter]:
        host, port = split_address(address)
        server_hostname = host if self._client_ssl is not None else None
        return await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=self._client_ssl, server_hostname=server_hostname
            ),
            self._connect_timeout,
        )


class Transport(Protocol):
    async def listen(self, address: str, on_connection: InboundHandler) -> Listener: ...

    async def connect(self, address: str) -> tuple[ByteReader, ByteWriter]: ...
