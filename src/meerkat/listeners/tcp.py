"""TCP listeners for clients: STARTTLS (5222) and direct TLS (5223, XEP-0368).

The only code (with the HTTP listener) that owns client sockets. Each accepted connection is
a `TcpConnection` (one asyncio protocol, TLS included: connection.py) and a `C2SSession` whose
`run()` is the connection's task. The listener caps its concurrent connections and tracks its
sessions so that shutdown can close them cleanly.
"""

from __future__ import annotations

import asyncio
import logging

from ..c2s.node import C2SNode
from ..c2s.session import C2SSession
from ..c2s.settings import C2SSettings
from .connection import TcpConnection, TlsMaterial

log = logging.getLogger(__name__)


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
        proxy_protocol: bool = False,
    ) -> None:
        self.node = node
        self.settings = settings
        self.host, self.port = host, port
        self.tls = tls
        self.direct_tls = direct_tls
        self.backlog = backlog
        self.max_connections = max_connections
        self.reuse_port = reuse_port
        self.proxy_protocol = proxy_protocol
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection,
            self.host,
            self.port,
            backlog=self.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )
        log.info("c2s_listener_started port=%d tls=%s", self.bound_port, self.direct_tls)

    def _new_connection(self) -> TcpConnection:
        return TcpConnection(
            self.tls,
            self.settings.state_timeout,
            self._accept,
            direct_tls=self.direct_tls and self.tls is not None,
            proxy_protocol=self.proxy_protocol,
        )

    def _accept(self, connection: TcpConnection) -> None:
        if len(self._connections) >= self.max_connections:
            connection.close()
            return
        # The session's own coroutine is the task (no wrapper: its frame was ~0.5 KiB for
        # every connection, idle ones included).
        session = C2SSession(self.node, self.settings, connection)
        task = asyncio.get_running_loop().create_task(session.run())
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

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
        if self._connections:
            log.warning("c2s_connections_cancelled count=%d", len(self._connections))
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=1.0)


__all__ = ["C2SListener", "TlsMaterial"]
