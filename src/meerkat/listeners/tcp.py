"""TCP listeners for clients: STARTTLS (5222) and direct TLS (5223, XEP-0368).

The only code (with the HTTP listener) that owns client sockets. Each accepted connection gets
a `TcpTransport` and a `C2SSession` whose `run()` is the connection's task. The listener caps
its concurrent connections and tracks its sessions so that shutdown can close them cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass

from ..c2s.node import C2SNode
from ..c2s.session import C2SSession
from ..c2s.settings import C2SSettings
from .tls import connection_bindings

log = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A listener's TLS context and its certificate (for tls-server-end-point)."""

    context: ssl.SSLContext
    certificate_der: bytes


class TcpTransport:
    """A client connection over TCP, optionally upgraded to TLS."""

    framed = False

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: TlsMaterial | None,
        handshake_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._tls = tls
        self._handshake_timeout = handshake_timeout
        peer = writer.get_extra_info("peername") or ("", 0)
        self._peer = (str(peer[0]), int(peer[1]))
        self._bindings: dict[str, bytes] | None = None

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    def _ssl_object(self) -> ssl.SSLObject | None:
        obj: ssl.SSLObject | None = self._writer.get_extra_info("ssl_object")
        return obj

    @property
    def secure(self) -> bool:
        return self._ssl_object() is not None

    @property
    def can_starttls(self) -> bool:
        return self._tls is not None and not self.secure

    @property
    def tls_version(self) -> str | None:
        obj = self._ssl_object()
        return obj.version() if obj is not None else None

    def channel_bindings(self) -> dict[str, bytes]:
        if self._bindings is None:
            obj = self._ssl_object()
            if obj is None or self._tls is None:
                return {}
            self._bindings = connection_bindings(obj, self._tls.certificate_der)
        return self._bindings

    async def read(self) -> bytes:
        return await self._reader.read(READ_SIZE)

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    def buffered(self) -> int:
        return self._writer.transport.get_write_buffer_size()

    async def start_tls(self) -> None:
        assert self._tls is not None
        await self._writer.start_tls(
            self._tls.context, ssl_handshake_timeout=self._handshake_timeout
        )

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()


class C2SListener:
    """Accepts client connections on one address and port."""

    def __init__(
        self,
        node: C2SNode,
        settings: C2SSettings,
        *,
        host: str,
        port: int,
        tls: TlsMaterial | None,
        direct_tls: bool,
        backlog: int = 1024,
        max_connections: int = 10000,
        reuse_port: bool = False,
    ) -> None:
        self.node = node
        self.settings = settings
        self.host, self.port = host, port
        self.tls = tls
        self.direct_tls = direct_tls
        self.backlog = backlog
        self.max_connections = max_connections
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        ctx = self.tls.context if (self.direct_tls and self.tls) else None
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self.port,
            ssl=ctx,
            backlog=self.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            ssl_handshake_timeout=self.settings.state_timeout if ctx else None,
            limit=READ_SIZE,
        )
        log.info("c2s_listener_started port=%d tls=%s", self.bound_port, self.direct_tls)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            transport = TcpTransport(reader, writer, self.tls, self.settings.state_timeout)
            await C2SSession(self.node, self.settings, transport).run()
        except asyncio.CancelledError:
            # `wait_closed` gave up on this session. End quietly: asyncio's stream callback
            # logs a connection task that ends cancelled as an error, one per connection.
            log.warning("c2s_connection_cancelled")
        finally:
            self._connections.discard(task)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self, timeout: float) -> None:
        """Wait for this listener's connections to end (after their sessions were told to).

        Ending thousands of sessions (each writes its last activity, leaves the session
        table, tells its contacts) can take longer than `timeout`: the wait goes on while
        sessions keep ending, and only those left after `timeout` without any session
        ending are cancelled (cancelling one mid-way loses what it had still to write)."""
        while self._connections:
            left = len(self._connections)
            await asyncio.wait(list(self._connections), timeout=timeout)
            if len(self._connections) >= left:
                break
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)
