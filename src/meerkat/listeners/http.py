"""HTTP listeners: the admin GraphQL endpoint and XMPP over WebSocket (BOSH later).

One aiohttp application per `[[listen.http]]`, with a route per configured handler. With
`[listen.http.tls]` the listener speaks HTTPS itself (so `wss://` needs no proxy), with the
configured certificate or the node's self-signed one, as the c2s listeners do.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from ..c2s.node import C2SNode
from ..c2s.settings import C2SSettings
from ..config.schema.tls import TlsConfig
from .certs import ensure_self_signed
from .tcp import TlsMaterial
from .tls import certificate_der, server_context
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
        self.tls: TlsMaterial | None = None
        """The HTTPS context and certificate; None for plain HTTP (set by `start`)."""
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
            settings = websocket_settings(self.c2s_settings, handler, tls=self.tls is not None)
            endpoint = WebSocketEndpoint(self.c2s_node, settings, handler, tls=self.tls)
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

    @property
    def scheme(self) -> str:
        """ "https" or "http" (for logs and URLs)."""
        return "https" if self.tls is not None else "http"

    async def start(self) -> None:
        if self.config.tls is not None:
            self.tls = https_material(self.config.tls, self.node.data_dir, self.node.hosts)
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            self.config.ip_address,
            self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            ssl_context=self.tls.context if self.tls is not None else None,
        )
        await self._site.start()
        log.info("http_listener_started port=%d scheme=%s", self.config.port, self.scheme)

    async def stop(self, timeout: float = 10.0) -> None:
        """Wait (up to `timeout`) for WebSocket sessions, already told to end, then close."""
        for endpoint in self.websockets:
            await endpoint.wait_closed(timeout)
        self.websockets.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def https_material(tls: TlsConfig, data_dir: Path, hosts: tuple[str, ...]) -> TlsMaterial:
    """The server TLS context of an HTTPS listener, from `[listen.http.tls]`.

    Without `certfile`, the node's self-signed certificate (the one its c2s listeners use,
    created under `<data_dir>/certs/` when absent). ALPN names HTTP/1.1: WebSocket upgrades
    need it, and aiohttp speaks no HTTP/2."""
    certfile, keyfile = tls.certfile, tls.keyfile
    if certfile is None:
        certfile, keyfile = ensure_self_signed(data_dir / "certs", hosts)
    context = server_context(certfile, keyfile, tls.min_version)
    context.set_alpn_protocols(["http/1.1"])
    if tls.ciphers is not None:
        context.set_ciphers(tls.ciphers)
    if tls.verify_mode == "peer":
        assert tls.cacertfile is not None  # config validation
        context.load_verify_locations(cafile=str(tls.cacertfile))
        context.verify_mode = ssl.CERT_REQUIRED
    return TlsMaterial(context, certificate_der(certfile))
