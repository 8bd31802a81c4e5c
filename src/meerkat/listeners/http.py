"""HTTP listeners: the admin GraphQL endpoint and XMPP over WebSocket (BOSH later).

One aiohttp application per `[[listen.http]]`, with a route per configured handler.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..c2s.node import C2SNode
from ..c2s.settings import C2SSettings
from .websocket import WebSocketEndpoint, websocket_settings

log = logging.getLogger(__name__)


class HttpListener:
    """Serves the handlers of one `[[listen.http]]` section."""

    def __init__(
        self,
        node: Any,
        config: Any,
        *,
        reuse_port: bool = False,
        c2s_node: C2SNode | None = None,
        c2s_settings: C2SSettings | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.reuse_port = reuse_port
        """Share the port with sibling worker processes (SO_REUSEPORT, `general.workers`)."""
        self.c2s_node = c2s_node
        self.c2s_settings = c2s_settings
        """Base session settings of WebSocket clients (`mod_websockets` needs both)."""
        self.websockets: list[WebSocketEndpoint] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        handlers = self.config.handlers
        for gql in handlers.mongoose_graphql_handler:
            from ..graphql import add_graphql_routes

            add_graphql_routes(
                app,
                self.node,
                path=gql.path,
                schema_endpoint=gql.schema_endpoint,
                username=gql.username,
                password=gql.password,
                allowed_categories=gql.allowed_categories,
            )
        for handler in handlers.mod_websockets:
            if self.c2s_node is None or self.c2s_settings is None:
                raise RuntimeError("mod_websockets needs the node's c2s services")
            settings = websocket_settings(
                self.c2s_settings, handler, tls=self.config.tls is not None
            )
            endpoint = WebSocketEndpoint(self.c2s_node, settings, handler)
            self.websockets.append(endpoint)
            app.router.add_get(handler.path, endpoint.handle)
        return app

    @property
    def bound_port(self) -> int:
        assert self._runner is not None
        server = self._runner.server
        assert self._site is not None and self._site._server is not None
        sockets = getattr(self._site._server, "sockets", None)
        assert sockets and server is not None
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            self.config.ip_address,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )
        await self._site.start()
        log.info("http_listener_started port=%d", self.config.port)

    async def stop(self, timeout: float = 10.0) -> None:
        """Wait (up to `timeout`) for WebSocket sessions, already told to end, then close."""
        for endpoint in self.websockets:
            await endpoint.wait_closed(timeout)
        self.websockets.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
