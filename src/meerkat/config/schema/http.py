"""`[[listen.http]]`: HTTP listeners and their handlers (WebSocket, BOSH, GraphQL).

Handlers follow MongooseIM's shape: `[[listen.http.handlers.<module>]]`, each with a `host`
(`"_"` = any) and a `path`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from meerkat.config.schema._util import check_min, check_port, check_unique, doc, quote
from meerkat.config.schema.tls import TlsConfig

#: GraphQL categories of the admin and user schemas (MongooseIM 6.2 names).
GRAPHQL_CATEGORIES = frozenset(
    {
        "account", "cets", "domain", "gdpr", "httpUpload", "inbox", "last", "metric",
        "mnesia", "muc", "muc_light", "offline", "private", "roster", "server", "session",
        "stanza", "stat", "token", "vcard",
    }
)  # fmt: skip


def _check_path(path: str) -> list[str]:
    if path.startswith("/"):
        return []
    return [f'path: must start with "/", got {quote(path)}']


@dataclass(frozen=True)
class WebSocketHandler:
    """`[[listen.http.handlers.mod_websockets]]`: XMPP over WebSocket (RFC 7395)."""

    host: str = field(default="_", metadata=doc('Virtual host to serve, "_" for any.'))
    path: str = field(default="/ws-xmpp", metadata=doc("URL path of the endpoint."))
    timeout: int | Literal["infinity"] = field(
        default="infinity",
        metadata=doc('Milliseconds of silence after which the socket is closed, or "infinity".'),
    )
    ping_rate: int | None = field(
        default=None,
        metadata=doc("Milliseconds between WebSocket pings; unset = no pings."),
    )
    max_stanza_size: int | None = field(
        default=None,
        metadata=doc(
            "Largest stanza (frame) accepted, in bytes; unset = `general.max_stanza_size`.",
            default="`general.max_stanza_size`",
        ),
    )
    c2s_state_timeout: int = field(
        default=30000, metadata=doc("Milliseconds allowed for each negotiation step.")
    )

    def validate(self) -> list[str]:
        """Path shape and positive sizes."""
        problems = _check_path(self.path)
        if isinstance(self.timeout, int):
            problems += check_min("timeout", self.timeout, 1)
        if self.ping_rate is not None:
            problems += check_min("ping_rate", self.ping_rate, 1)
        if self.max_stanza_size is not None:
            problems += check_min("max_stanza_size", self.max_stanza_size, 1024)
        return problems


@dataclass(frozen=True)
class BoshHandler:
    """`[[listen.http.handlers.mod_bosh]]`: XMPP over BOSH (XEP-0124, XEP-0206). Session
    options (inactivity, max wait) belong to `[modules.mod_bosh]`."""

    host: str = field(default="_", metadata=doc('Virtual host to serve, "_" for any.'))
    path: str = field(default="/http-bind", metadata=doc("URL path of the endpoint."))

    def validate(self) -> list[str]:
        """Path shape."""
        return _check_path(self.path)


@dataclass(frozen=True)
class GraphqlHandler:
    """`[[listen.http.handlers.mongoose_graphql_handler]]`: the GraphQL API (admin or user)."""

    schema_endpoint: Literal["admin", "domain_admin", "user"] = field(
        metadata=doc(
            'Which API (required): "admin" (all commands; HTTP Basic with username and '
            'password when set, else no authentication), "domain_admin" or "user" '
            "(Basic with a bare JID and its password)."
        )
    )
    host: str = field(default="_", metadata=doc('Virtual host to serve, "_" for any.'))
    path: str = field(default="/api/graphql", metadata=doc("URL path of the endpoint."))
    username: str | None = field(
        default=None, metadata=doc("Admin login (admin endpoint only; set with password).")
    )
    password: str | None = field(
        default=None, metadata=doc("Admin password (admin endpoint only; set with username).")
    )
    allowed_categories: tuple[str, ...] | None = field(
        default=None,
        metadata=doc(
            'Categories served (e.g. `["account", "session"]`); others answer '
            '"category disabled". Unset = all.',
            default="unset (all)",
        ),
    )
    sse_idle_timeout: int = field(
        default=3600000,
        metadata=doc("Milliseconds an idle subscription (server-sent events) stays open."),
    )

    def validate(self) -> list[str]:
        """Credentials come in pairs and only for the admin endpoint; known categories."""
        problems = _check_path(self.path)
        if (self.username is None) != (self.password is None):
            problems.append("username: username and password must be set together")
        if self.username is not None and self.schema_endpoint != "admin":
            problems.append('username: only the "admin" endpoint takes credentials')
        for index, category in enumerate(self.allowed_categories or ()):
            if category not in GRAPHQL_CATEGORIES:
                problems.append(f"allowed_categories[{index}]: unknown category {quote(category)}")
        problems += check_unique("allowed_categories", self.allowed_categories or ())
        problems += check_min("sse_idle_timeout", self.sse_idle_timeout, 1)
        return problems


@dataclass(frozen=True)
class HttpHandlers:
    """`[listen.http.handlers]`: the endpoints of one HTTP listener, by handler module."""

    mod_websockets: tuple[WebSocketHandler, ...] = field(
        default=(), metadata=doc("WebSocket endpoints.")
    )
    mod_bosh: tuple[BoshHandler, ...] = field(default=(), metadata=doc("BOSH endpoints."))
    mongoose_graphql_handler: tuple[GraphqlHandler, ...] = field(
        default=(), metadata=doc("GraphQL endpoints.")
    )

    def validate(self) -> list[str]:
        """No two handlers on the same host and path; only handlers that exist."""
        problems: list[str] = []
        if self.mod_bosh:
            # TODO: BOSH (XEP-0124/0206). Refused rather than accepted and silently not served.
            problems.append("mod_bosh: BOSH is not implemented yet")
        seen: dict[tuple[str, str], str] = {}
        groups: list[tuple[str, tuple[WebSocketHandler | BoshHandler | GraphqlHandler, ...]]]
        groups = [
            ("mod_websockets", self.mod_websockets),
            ("mod_bosh", self.mod_bosh),
            ("mongoose_graphql_handler", self.mongoose_graphql_handler),
        ]
        for name, handlers in groups:
            for index, handler in enumerate(handlers):
                key = (handler.host, handler.path)
                where = f"{name}[{index}]"
                if key in seen:
                    problems.append(
                        f"{where}.path: {handler.path} is already served by {seen[key]}"
                    )
                else:
                    seen[key] = where
        return problems


@dataclass(frozen=True)
class HttpTransport:
    """`[listen.http.transport]`: connection limits of an HTTP listener."""

    max_connections: int = field(
        default=1024, metadata=doc("HTTP connections this listener serves at once.")
    )

    def validate(self) -> list[str]:
        """At least one connection."""
        return check_min("max_connections", self.max_connections, 1)


@dataclass(frozen=True)
class HttpListener:
    """`[[listen.http]]`: one HTTP(S) listener."""

    port: int = field(metadata=doc("TCP port (required)."))
    ip_address: str = field(default="0.0.0.0", metadata=doc("Address to bind."))
    backlog: int = field(default=1024, metadata=doc("Listen backlog of the socket."))
    tls: TlsConfig | None = field(
        default=None,
        metadata=doc(
            "HTTPS settings, `[listen.http.tls]`: the listener serves `https://` and "
            "`wss://` itself. An empty table uses the node's self-signed certificate; "
            "absent = plain HTTP (`ws://`, for loopback or behind a TLS proxy)."
        ),
    )
    transport: HttpTransport = field(
        default_factory=HttpTransport, metadata=doc("Connection limits.")
    )
    handlers: HttpHandlers = field(
        default_factory=HttpHandlers, metadata=doc("Endpoints served by this listener.")
    )

    def validate(self) -> list[str]:
        """Port in range."""
        return check_port("port", self.port) + check_min("backlog", self.backlog, 1)
