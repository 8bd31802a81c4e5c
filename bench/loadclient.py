"""One raw-XML XMPP client connection for the load generator, and its login sequence.

`XmppConnection` is an asyncio Protocol around a stdlib expat parser (namespace-aware, so
prefixes do not matter). Top-level stanzas either queue for `recv()` (login steps) or go
straight to `on_stanza` (the message hot path, no queue, no task switch). `login()` runs the
whole client side: TCP (optionally from a chosen source address), STARTTLS or direct TLS,
SASL (SCRAM-SHA-* with a SaltedPassword cache, -PLUS with tls-server-end-point, or PLAIN),
bind, session, optional roster get, initial presence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from scramcache import ScramCache

from meerkat.xmpp.sasl.channel_binding import TLS_SERVER_END_POINT, tls_server_end_point_data
from meerkat.xmpp.sasl.errors import SaslFailure
from meerkat.xmpp.sasl.plain import format_plain
from meerkat.xmpp.sasl.scram import ScramClient, parse_mechanism, prepare_password, salted_password

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_CLIENT = "jabber:client"
NS_ROSTER = "jabber:iq:roster"
NS_PING = "urn:xmpp:ping"


class LoginError(Exception):
    """A login step failed; `reason` is a short stable label for counting."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Element:
    """A parsed element: `name` is "namespace local" (expat's separator is a space)."""

    __slots__ = ("attrs", "children", "name", "text")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self.children: list[Element] = []
        self.text = ""

    def child(self, name: str) -> Element | None:
        """First child with that qualified name."""
        return next((c for c in self.children if c.name == name), None)


def q(ns: str, local: str) -> str:
    """Qualified name as the parser reports it."""
    return f"{ns} {local}"


class XmppConnection(asyncio.Protocol):
    """A client stream: bytes in -> elements; `send` writes bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_stanza: Callable[[Element], None] | None = None
        self.on_lost: Callable[[XmppConnection], None] | None = None
        self.jid = ""
        self.closing = False
        self.lost = False
        self._inbox: deque[Element] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: LoginError | None = None
        self._stack: list[Element] = []
        self._parser: expat.XMLParserType | None = None
        self.reset_parser()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            assert self._parser is not None
            self._parser.Parse(data, False)
        except expat.ExpatError as exc:
            self._fail(LoginError(f"xml:{exc.code}"))
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(LoginError("disconnected"))
        if self.on_lost is not None and not self.closing:
            self.on_lost(self)

    # -- parsing
    def reset_parser(self) -> None:
        """Start a fresh XML document (after STARTTLS and SASL success)."""
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        self._parser = parser
        self._stack = []

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        element = Element(name, attrs)
        # Stanzas are not kept as children of the stream root: it lives as long as the
        # connection, and it used to collect every message received (~4 objects each), which
        # grew the generator's heap all run long and made each full GC pass stop it for
        # 80-140 ms (the paced scenarios' p99 measured those pauses, for every server alike).
        if len(self._stack) > 1:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _end(self, name: str) -> None:
        element = self._stack.pop()
        if len(self._stack) == 1:
            if _is_ping(element):
                self._answer_ping(element)
            elif self.on_stanza is not None:
                self.on_stanza(element)
            else:
                self._inbox.append(element)
                self._wake()
        elif not self._stack:
            self._fail(LoginError("stream-closed"))

    def _answer_ping(self, iq: Element) -> None:
        """XEP-0199: answer a server's ping, or a server that pings quiet clients (Meerkat's
        mod_ping, after 60 s) closes connections held longer than that."""
        to = iq.attrs.get("from")
        attrs = f" to={quoteattr(to)}" if to else ""
        self.send(f"<iq type='result' id={quoteattr(iq.attrs.get('id', ''))}{attrs}/>".encode())

    def _chars(self, data: str) -> None:
        if len(self._stack) > 1:
            self._stack[-1].text += data

    # -- waiting
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: LoginError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    async def recv(self) -> Element:
        """Next top-level element; LoginError on stream error, close or disconnect."""
        while not self._inbox:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        element = self._inbox.popleft()
        if element.name == q(NS_STREAM, "error"):
            condition = element.children[0].name.split(" ")[-1] if element.children else "?"
            raise LoginError(f"stream-error:{condition}")
        return element

    # -- sending
    def send(self, data: bytes) -> None:
        """Write bytes (no-op once the connection is gone)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def open_stream(self, domain: str) -> None:
        """Send a stream header (the parser must already be fresh)."""
        self.send(
            f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>".encode()
        )

    def close(self) -> None:
        """Close the stream politely and drop the connection."""
        self.closing = True
        self.send(b"</stream:stream>")
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection with a TCP reset: no closing tag, no TLS close_notify (a
        client that vanished; the server sees the socket fail, not the stream end)."""
        self.closing = True
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def _is_ping(element: Element) -> bool:
    return (
        element.name == q(NS_CLIENT, "iq")
        and element.attrs.get("type") == "get"
        and element.child(q(NS_PING, "ping")) is not None
    )


@dataclass
class LoginConfig:
    """How to log in; shared by every connection of a run."""

    host: str = "127.0.0.1"
    port: int = 5222
    domain: str = "localhost"
    tls: str = "starttls"  # "starttls", "direct" or "none"
    mechanism: str = "SCRAM-SHA-1"
    password: str = "secret"
    session: str = "auto"  # "auto" (if required), "always", "never"
    roster: bool = False
    presence: bool = True
    done_on: str = "echo"  # "echo": own presence came back, "sent": presence written
    nagle: bool = False
    ssl_context: ssl.SSLContext = field(default_factory=lambda: client_ssl_context())


def client_ssl_context() -> ssl.SSLContext:
    """A TLS client context that does not verify (loopback benchmark, self-signed certs)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class LoginStats:
    """What the SASL step cost the generator."""

    scram_computed: int = 0
    scram_cached: int = 0


async def login(
    cfg: LoginConfig,
    username: str,
    resource: str,
    *,
    cache: ScramCache,
    stats: LoginStats,
    source_ip: str | None = None,
    nonce: str | None = None,
) -> XmppConnection:
    """Connect and log in; returns the ready connection or raises LoginError/OSError."""
    loop = asyncio.get_running_loop()
    direct = cfg.tls == "direct"
    transport, conn = await loop.create_connection(
        XmppConnection,
        cfg.host,
        cfg.port,
        ssl=cfg.ssl_context if direct else None,
        server_hostname=cfg.domain if direct else None,
        local_addr=(source_ip, 0) if source_ip else None,
    )
    try:
        if not cfg.nagle:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.open_stream(cfg.domain)
        features = await _features(conn)
        if cfg.tls == "starttls":
            if features.child(q(NS_TLS, "starttls")) is None:
                raise LoginError("no-starttls")
            conn.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            if (await conn.recv()).name != q(NS_TLS, "proceed"):
                raise LoginError("starttls-refused")
            conn.reset_parser()
            assert conn.transport is not None
            tls_transport = await loop.start_tls(
                conn.transport, conn, cfg.ssl_context, server_hostname=cfg.domain
            )
            conn.transport = tls_transport
            conn.open_stream(cfg.domain)
            features = await _features(conn)
        await _authenticate(conn, cfg, features, username, cache, stats, nonce)
        conn.reset_parser()
        conn.open_stream(cfg.domain)
        features = await _features(conn)
        await _bind(conn, features, resource, cfg.session)
        if cfg.roster:
            conn.send(b"<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
            await _result(conn, "r1", "roster")
        if cfg.presence:
            conn.send(b"<presence/>")
            if cfg.done_on == "echo":
                while True:
                    el = await conn.recv()
                    if el.name == q(NS_CLIENT, "presence") and el.attrs.get("from") == conn.jid:
                        break
        return conn
    except BaseException:
        conn.closing = True
        if conn.transport is not None:
            conn.transport.abort()
        raise


async def _features(conn: XmppConnection) -> Element:
    element = await conn.recv()
    if element.name != q(NS_STREAM, "features"):
        raise LoginError("no-features")
    return element


async def _authenticate(
    conn: XmppConnection,
    cfg: LoginConfig,
    features: Element,
    username: str,
    cache: ScramCache,
    stats: LoginStats,
    nonce: str | None,
) -> None:
    mechs_el = features.child(q(NS_SASL, "mechanisms"))
    offered = {m.text for m in mechs_el.children} if mechs_el is not None else set()
    if cfg.mechanism not in offered:
        raise LoginError(f"mechanism-not-offered:{cfg.mechanism}")
    if cfg.mechanism == "PLAIN":
        payload = base64.b64encode(format_plain(username, cfg.password)).decode()
        conn.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>".encode())
        await _sasl_outcome(conn)
        return
    h, plus = parse_mechanism(cfg.mechanism)
    binding = None
    if plus:
        assert conn.transport is not None
        ssl_object = conn.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is None:
            raise LoginError("no-channel-binding")
        binding = (TLS_SERVER_END_POINT, tls_server_end_point_data(der))
    client = ScramClient(
        cfg.mechanism,
        username,
        nonce or base64.b64encode(time.perf_counter_ns().to_bytes(8, "big") + _rand()).decode(),
        channel_binding=binding,
    )
    first = base64.b64encode(client.client_first()).decode()
    conn.send(f"<auth xmlns='{NS_SASL}' mechanism='{cfg.mechanism}'>{first}</auth>".encode())
    challenge = await conn.recv()
    if challenge.name != q(NS_SASL, "challenge"):
        raise LoginError(_sasl_failure(challenge))
    try:
        server_first = client.receive_server_first(base64.b64decode(challenge.text))
        password = prepare_password(cfg.password)
        salted = cache.get(h.name, server_first.salt, server_first.iterations, password)
        if salted is None:
            salted = await asyncio.to_thread(
                salted_password, h, password, server_first.salt, server_first.iterations
            )
            cache.put(h.name, server_first.salt, server_first.iterations, password, salted)
            stats.scram_computed += 1
        else:
            stats.scram_cached += 1
        final = base64.b64encode(client.client_final(salted)).decode()
        conn.send(f"<response xmlns='{NS_SASL}'>{final}</response>".encode())
        success = await _sasl_outcome(conn)
        client.receive_server_final(base64.b64decode(success.text))
    except SaslFailure as exc:
        raise LoginError(f"scram:{exc.condition.value}") from None


def _rand() -> bytes:
    return os.urandom(12)


def _sasl_failure(element: Element) -> str:
    if element.name == q(NS_SASL, "failure") and element.children:
        return "sasl:" + element.children[0].name.split(" ")[-1]
    return "sasl:unexpected:" + element.name.split(" ")[-1]


async def _sasl_outcome(conn: XmppConnection) -> Element:
    element = await conn.recv()
    if element.name != q(NS_SASL, "success"):
        raise LoginError(_sasl_failure(element))
    return element


async def _bind(conn: XmppConnection, features: Element, resource: str, session: str) -> None:
    if features.child(q(NS_BIND, "bind")) is None:
        raise LoginError("no-bind")
    conn.send(
        f"<iq type='set' id='b1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource>"
        "</bind></iq>".encode()
    )
    result = await _result(conn, "b1", "bind")
    bind = result.child(q(NS_BIND, "bind"))
    jid = bind.child(q(NS_BIND, "jid")) if bind is not None else None
    if jid is None:
        raise LoginError("bind-no-jid")
    conn.jid = jid.text
    session_el = features.child(q(NS_SESSION, "session"))
    required = session_el is not None and session_el.child(q(NS_SESSION, "optional")) is None
    if session == "always" or (session == "auto" and required):
        conn.send(f"<iq type='set' id='s1'><session xmlns='{NS_SESSION}'/></iq>".encode())
        await _result(conn, "s1", "session")


async def _result(conn: XmppConnection, iq_id: str, step: str) -> Element:
    while True:
        element = await conn.recv()
        if element.name == q(NS_CLIENT, "iq") and element.attrs.get("id") == iq_id:
            if element.attrs.get("type") != "result":
                raise LoginError(f"{step}-error")
            return element
