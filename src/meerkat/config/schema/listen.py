"""`[listen]`: client (c2s), server (s2s) and component (service) socket listeners.

HTTP listeners live in `schema/http.py`. The listener defaults used when the file has no
`[listen]` section at all are built by `default_listen()`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from meerkat.config.schema._util import check_min, check_port, doc, quote
from meerkat.config.schema.http import (
    GraphqlHandler,
    HttpHandlers,
    HttpListener,
    WebSocketHandler,
)
from meerkat.config.schema.tls import C2STlsConfig, TlsConfig

_MAX_STANZA_DOC = "Largest stanza accepted, in bytes; unset = `general.max_stanza_size`."


@dataclass(frozen=True)
class C2SListener:
    """`[[listen.c2s]]`: one TCP listener for XMPP clients (RFC 6120)."""

    port: int = field(metadata=doc("TCP port (required). 5222 for STARTTLS, 5223 for TLS."))
    ip_address: str = field(default="0.0.0.0", metadata=doc("Address to bind; `::` for IPv6."))
    backlog: int = field(default=1024, metadata=doc("Listen backlog of the socket."))
    max_connections: int = field(
        default=10000,
        metadata=doc("Connections this listener accepts at once; more are refused."),
    )
    max_stanza_size: int | None = field(
        default=None, metadata=doc(_MAX_STANZA_DOC, default="`general.max_stanza_size`")
    )
    max_depth: int = field(
        default=32,
        metadata=doc("Deepest XML element nesting accepted inside a stanza (XML bomb guard)."),
    )
    access: str = field(
        default="c2s",
        metadata=doc('Access rule deciding who may connect; "all" lets everyone in.'),
    )
    shaper: str = field(
        default="c2s_shaper",
        metadata=doc(
            'Access rule naming the traffic shaper per user, or a shaper name; "none" for '
            "no shaping."
        ),
    )
    c2s_state_timeout: int = field(
        default=30000,
        metadata=doc(
            "Milliseconds a client may take for each negotiation step (stream open, "
            "STARTTLS, SASL, bind) before it is disconnected. (MongooseIM: 5000; ours is "
            "longer for slow mobile links.)"
        ),
    )
    proxy_protocol: bool = field(
        default=False,
        metadata=doc(
            "Expect a HAProxy PROXY protocol header (v1 or v2) first on each connection (behind "
            "a load balancer): the client address it names is the session's; a connection "
            "without a valid one is closed."
        ),
    )
    tls: C2STlsConfig = field(
        default_factory=C2STlsConfig, metadata=doc("TLS settings; see `[listen.c2s.tls]`.")
    )

    def validate(self) -> list[str]:
        """Ports, sizes and timeouts in range."""
        problems = check_port("port", self.port)
        problems += check_min("backlog", self.backlog, 1)
        problems += check_min("max_connections", self.max_connections, 1)
        if self.max_stanza_size is not None:
            problems += check_min("max_stanza_size", self.max_stanza_size, 1024)
        problems += check_min("max_depth", self.max_depth, 2)
        problems += check_min("c2s_state_timeout", self.c2s_state_timeout, 1)
        return problems


@dataclass(frozen=True)
class S2SListener:
    """`[[listen.s2s]]`: one TCP listener for other XMPP servers (federation, parsed only)."""

    port: int = field(metadata=doc("TCP port (required), usually 5269."))
    ip_address: str = field(default="0.0.0.0", metadata=doc("Address to bind."))
    backlog: int = field(default=1024, metadata=doc("Listen backlog of the socket."))
    max_stanza_size: int = field(default=131072, metadata=doc("Largest stanza accepted, in bytes."))
    shaper: str = field(
        default="s2s_shaper", metadata=doc('Access rule or shaper name; "none" for none.')
    )
    tls: TlsConfig = field(default_factory=TlsConfig, metadata=doc("TLS certificate settings."))

    def validate(self) -> list[str]:
        """Ports and sizes in range."""
        problems = check_port("port", self.port)
        problems += check_min("backlog", self.backlog, 1)
        problems += check_min("max_stanza_size", self.max_stanza_size, 1024)
        return problems


@dataclass(frozen=True)
class ServiceListener:
    """`[[listen.service]]`: external components (XEP-0114)."""

    port: int = field(metadata=doc("TCP port (required), usually 8888."))
    password: str = field(metadata=doc("Shared secret of the components (required)."))
    ip_address: str = field(default="127.0.0.1", metadata=doc("Address to bind."))
    backlog: int = field(default=1024, metadata=doc("Listen backlog of the socket."))
    max_stanza_size: int = field(default=65536, metadata=doc("Largest stanza accepted, in bytes."))
    access: str = field(default="all", metadata=doc("Access rule deciding who may connect."))
    shaper_rule: str = field(default="none", metadata=doc('Shaper name; "none" for none.'))
    check_from: bool = field(
        default=True, metadata=doc("Require the `from` of stanzas to be the component's domain.")
    )
    hidden_components: bool = field(
        default=False, metadata=doc("Hide the components from service discovery.")
    )
    conflict_behaviour: Literal["disconnect", "kick_old"] = field(
        default="disconnect",
        metadata=doc("What a component connecting with a name already in use does."),
    )

    def validate(self) -> list[str]:
        """Port and size in range; a non-empty password."""
        problems = check_port("port", self.port)
        problems += check_min("backlog", self.backlog, 1)
        problems += check_min("max_stanza_size", self.max_stanza_size, 1024)
        if not self.password:
            problems.append("password: must not be empty")
        return problems


@dataclass(frozen=True)
class ListenConfig:
    """`[listen]`: every socket the node listens on. Without a `[listen]` section the node
    listens on c2s 5222 (STARTTLS required), c2s 5223 (direct TLS), HTTP 5280 (WebSocket
    `/ws-xmpp`) and admin GraphQL on 127.0.0.1:5551 `/api/graphql`."""

    c2s: tuple[C2SListener, ...] = field(
        default=(), metadata=doc("Client listeners, `[[listen.c2s]]`.")
    )
    http: tuple[HttpListener, ...] = field(
        default=(), metadata=doc("HTTP listeners, `[[listen.http]]`.")
    )
    s2s: tuple[S2SListener, ...] = field(
        default=(), metadata=doc("Federation listeners, `[[listen.s2s]]`.")
    )
    service: tuple[ServiceListener, ...] = field(
        default=(), metadata=doc("Component listeners, `[[listen.service]]`.")
    )

    def validate(self) -> list[str]:
        """No two listeners on overlapping addresses and the same port; valid addresses."""
        problems: list[str] = []
        seen: list[tuple[str, str, int]] = []  # (where, ip, port)
        groups: list[tuple[str, tuple[AnyListener, ...]]] = [
            ("c2s", self.c2s),
            ("http", self.http),
            ("s2s", self.s2s),
            ("service", self.service),
        ]
        for kind, listeners in groups:
            for index, listener in enumerate(listeners):
                where = f"{kind}[{index}]"
                ip, port = listener.ip_address, listener.port
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    problems.append(f"{where}.ip_address: not an IP address: {quote(ip)}")
                    continue
                clash = next((w for w, i, p in seen if p == port and _overlap(i, ip)), None)
                if clash is not None:
                    problems.append(
                        f"{where}.port: {port} on {ip} is already used by listen.{clash}"
                    )
                seen.append((where, ip, port))
        return problems


AnyListener = C2SListener | S2SListener | ServiceListener | HttpListener


def _overlap(a: str, b: str) -> bool:
    """Whether two bind addresses collide (equal, or a wildcard of the same family)."""
    if a == b:
        return True
    family_a, family_b = ipaddress.ip_address(a).version, ipaddress.ip_address(b).version
    wildcard = {"0.0.0.0", "::"}
    return family_a == family_b and (a in wildcard or b in wildcard)


def default_listen() -> ListenConfig:
    """The listeners of a node started without a `[listen]` section."""
    return ListenConfig(
        c2s=(
            C2SListener(port=5222),
            C2SListener(port=5223, tls=C2STlsConfig(mode="tls")),
        ),
        http=(
            HttpListener(
                port=5280,
                handlers=HttpHandlers(
                    mod_websockets=(WebSocketHandler(),),
                ),
            ),
            HttpListener(
                port=5551,
                ip_address="127.0.0.1",
                handlers=HttpHandlers(
                    mongoose_graphql_handler=(GraphqlHandler(schema_endpoint="admin"),),
                ),
            ),
        ),
    )
