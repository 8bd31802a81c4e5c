"""HTTP listeners: the admin GraphQL endpoint (and, later, WebSocket and BOSH).

One aiohttp application per `[[listen.http]]`, with a route per configured handler.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class HttpListener:
    """Serves the handlers of one `[[listen.http]]` section."""

    def __init__(self, node: Any, config: Any, *, reuse_port: bool = False) -> None:
        self.node = node
        self.config = config
        self.reuse_port = reuse_port
        """Share the port with sibling worker processes (SO_REUSEPORT, `general.workers`)."""
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

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
