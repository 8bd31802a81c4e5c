"""A raw-XML XMPP client for end-to-end tests: real sockets, real TLS, every byte visible.

It parses the server's stream with Meerkat's own sans-IO parser (the parser does not care
which side it reads) and authenticates with the client half of the SCRAM code, so tests can
speak correct XMPP and then break it on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import ssl
from collections.abc import Callable

from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.errors import StreamError
from meerkat.xmpp.sasl.scram import ScramClient
from meerkat.xmpp.sasl.scram import crypto as scram_crypto
from meerkat.xmpp.stream import StreamClosed, StreamOpened, XmlStream

TIMEOUT = 5.0


def client_tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def header(to: str = "localhost", version: str = "1.0", xmlns: str = ns.CLIENT) -> str:
    return (
        f"<?xml version='1.0'?><stream:stream to='{to}' version='{version}' "
        f"xmlns='{xmlns}' xmlns:stream='{ns.STREAM}'>"
    )


class RawClient:
    """One connection. `events` collects what the server sent, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
        self.events: list[Element | StreamOpened | StreamClosed] = []
        self.jid = ""
        self.closed = False

    @classmethod
    async def connect(cls, port: int, *, direct_tls: bool = False) -> RawClient:
        ctx = client_tls_context() if direct_tls else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        return cls(reader, writer)

    def send(self, data: str | bytes | Element) -> None:
        if isinstance(data, Element):
            data = data.to_string(ns.CLIENT)
        self.writer.write(data.encode() if isinstance(data, str) else data)

    async def _read_more(self, timeout: float) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            self.closed = True
            raise ConnectionError("server closed the connection")
        try:
            self.events.extend(self.parser.feed(data))
        except StreamError:
            self.closed = True
            raise

    async def next_event(self, timeout: float = TIMEOUT) -> Element | StreamOpened | StreamClosed:
        while not self.events:
            await self._read_more(timeout)
        return self.events.pop(0)

    async def expect(
        self, match: str | Callable[[Element], bool], timeout: float = TIMEOUT
    ) -> Element:
        """The next element matching a name or predicate; earlier elements are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - loop.time()))
            if isinstance(event, Element):
                if (isinstance(match, str) and event.name == match) or (
                    callable(match) and match(event)
                ):
                    return event
            elif isinstance(event, StreamClosed):
                raise ConnectionError("stream closed while waiting")

    async def stream_error(self, timeout: float = TIMEOUT) -> str:
        """Read until a stream error; return its condition."""
        err = await self.expect(lambda e: e.name == "error" and e.xmlns == ns.STREAM, timeout)
        for child in err.elements():
            if child.xmlns == ns.STREAMS_ERRORS and child.name != "text":
                return child.name
        raise AssertionError("stream error without a condition")

    async def wait_closed(self, timeout: float = TIMEOUT) -> None:
        """Wait until the server closes the TCP connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed:
            try:
                await self._read_more(max(0.01, deadline - loop.time()))
            except (ConnectionError, StreamError, ssl.SSLError):
                self.closed = True
        self.writer.close()

    async def open_stream(self, to: str = "localhost") -> Element:
        """Send a stream header; return the features."""
        self.parser.close()  # its handlers are bound to it: a cycle the collector would free
        self.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
        self.send(header(to))
        opened = await self.next_event()
        assert isinstance(opened, StreamOpened), opened
        return await self.expect("features")

    async def starttls(self) -> Element:
        self.send(f"<starttls xmlns='{ns.TLS}'/>")
        await self.expect("proceed")
        await self.writer.start_tls(client_tls_context())
        return await self.open_stream()

    async def scram(
        self, username: str, password: str, mechanism: str = "SCRAM-SHA-256"
    ) -> Element:
        """Authenticate; return <success/> or <failure/>."""
        client = ScramClient(mechanism, username, secrets.token_urlsafe(18))
        first = base64.b64encode(client.client_first()).decode()
        self.send(f"<auth xmlns='{ns.SASL}' mechanism='{mechanism}'>{first}</auth>")
        reply = await self.expect(lambda e: e.xmlns == ns.SASL)
        if reply.name != "challenge":
            return reply
        server_first = client.receive_server_first(base64.b64decode(reply.text))
        salted = scram_crypto.salted_password(
            client.hash,
            scram_crypto.prepare_password(password),
            server_first.salt,
            server_first.iterations,
        )
        final = base64.b64encode(client.client_final(salted)).decode()
        self.send(f"<response xmlns='{ns.SASL}'>{final}</response>")
        reply = await self.expect(lambda e: e.xmlns == ns.SASL)
        if reply.name == "success":
            client.receive_server_final(base64.b64decode(reply.text))
        return reply

    async def bind(self, resource: str | None = None) -> str:
        res = f"<resource>{resource}</resource>" if resource else ""
        self.send(f"<iq type='set' id='bind1'><bind xmlns='{ns.BIND}'>{res}</bind></iq>")
        reply = await self.expect(lambda e: e.name == "iq" and e.attrs.get("id") == "bind1")
        assert reply.attrs.get("type") == "result", reply
        bind = reply.find("bind", ns.BIND)
        assert bind is not None
        self.jid = bind.find_text("jid") or ""
        return self.jid

    async def login(
        self,
        username: str,
        password: str = "secret",
        resource: str | None = None,
        *,
        tls: str = "starttls",
        mechanism: str = "SCRAM-SHA-256",
    ) -> str:
        """Negotiate a full session; return the bound JID."""
        await self.open_stream()
        if tls == "starttls":
            await self.starttls()
        result = await self.scram(username, password, mechanism)
        assert result.name == "success", result
        await self.open_stream()
        return await self.bind(resource)

    async def close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
                self.writer.write(b"</stream:stream>")
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def logged_in(
    port: int, username: str, resource: str | None = None, *, direct_tls: bool = False
) -> RawClient:
    client = await RawClient.connect(port, direct_tls=direct_tls)
    await client.login(username, resource=resource, tls="none" if direct_tls else "starttls")
    return client
