"""Real `C2SSession`s over in-memory transports, on the in-process kernel: no sockets.

`C2SHarness` wires a `C2SNode` onto kernel_harness's `Server` (memory stores, real modules,
hooks that re-raise) and opens `Wire`s: each is a connection whose session task really runs,
whose bytes are parsed with Meerkat's own stream parser, and which can be dropped (end of
file, as a dead socket) or closed cleanly. The other test_c2s_* files build on it; the tests
here check the harness itself.
"""

from __future__ import annotations

import asyncio
import base64
import collections
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from kernel_harness import Server

from meerkat.c2s.node import C2SNode
from meerkat.c2s.session import C2SSession
from meerkat.c2s.settings import C2SSettings
from meerkat.c2s.transport import Sink
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.stream import StreamClosed, StreamOpened, XmlStream

TIMEOUT = 3.0
HEADER = (
    "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    f"xmlns='{ns.CLIENT}' xmlns:stream='{ns.STREAM}'>"
)
CB_EXPORTER = b"E" * 32
CB_END_POINT = b"P" * 32


class MemoryTransport:
    """A `Transport` whose peer is the test: TLS is pretended, bytes are handed over."""

    framed = False

    def __init__(self, port: int, bindings: Mapping[str, bytes]) -> None:
        self._peer = ("127.0.0.1", port)
        self._bindings = dict(bindings)
        self.pending: collections.deque[bytes] = collections.deque()
        """What the test sent and the session has not taken yet (it paused reading)."""
        self._sink: Sink | None = None
        self._paused = True
        self.output = bytearray()
        self.written = asyncio.Event()
        self.closed = False

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    @property
    def secure(self) -> bool:
        return True

    @property
    def can_starttls(self) -> bool:
        return False

    @property
    def tls_version(self) -> str | None:
        return "TLSv1.3"

    def channel_bindings(self) -> dict[str, bytes]:
        return self._bindings

    def start_reading(self, sink: Sink) -> None:
        self._sink = sink
        self._paused = False
        self._pump()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._pump()

    def push(self, data: bytes) -> None:
        """Bytes from the client (b"": the end of the stream)."""
        self.pending.append(data)
        self._pump()

    def _pump(self) -> None:
        while not self._paused and self.pending and self._sink is not None:
            sink = self._sink
            data = self.pending.popleft()
            if not data:
                self._sink = None
            sink(data)

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.output += data
            self.written.set()

    def buffered(self) -> int:
        return 0

    async def start_tls(self) -> None:
        raise AssertionError("no STARTTLS in memory")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sink = None
            self.written.set()


class Wire:
    """The client end of one connection."""

    def __init__(self, harness: C2SHarness, transport: MemoryTransport) -> None:
        self.harness = harness
        self.transport = transport
        self.session = C2SSession(harness.node, harness.settings, transport)
        self.task = asyncio.get_running_loop().create_task(self.session.run())
        self.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
        self.events: list[Element | StreamOpened | StreamClosed] = []
        self.jid = ""

    # -- sending ------------------------------------------------------------------------------
    def send(self, data: str | Element) -> None:
        text = data.to_string(ns.CLIENT) if isinstance(data, Element) else data
        self.transport.push(text.encode())

    def drop(self) -> None:
        """The connection dies: end of file without ``</stream:stream>``."""
        self.transport.push(b"")

    async def close(self) -> None:
        self.send("</stream:stream>")
        await asyncio.wait_for(self.task, TIMEOUT)

    # -- receiving ----------------------------------------------------------------------------
    async def _read_more(self, timeout: float) -> None:
        self.transport.written.clear()
        if not self.transport.output and not self.transport.closed:
            await asyncio.wait_for(self.transport.written.wait(), timeout)
        data, self.transport.output = bytes(self.transport.output), bytearray()
        if not data and self.transport.closed:
            raise ConnectionError("closed")
        self.events.extend(self.parser.feed(data))

    async def next_event(self, timeout: float = TIMEOUT) -> Element | StreamOpened | StreamClosed:
        while not self.events:
            await self._read_more(timeout)
        return self.events.pop(0)

    async def expect(
        self, match: str | Callable[[Element], bool], timeout: float = TIMEOUT
    ) -> Element:
        """The next element matching a name or predicate; others before it are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - loop.time()))
            if isinstance(event, Element) and (
                (isinstance(match, str) and event.name == match)
                or (callable(match) and match(event))
            ):
                return event
            if isinstance(event, StreamClosed):
                raise ConnectionError("stream closed while waiting")

    async def elements(self, settle: float = 0.05) -> list[Element]:
        """Everything the server sent until it is quiet for `settle` seconds."""
        out: list[Element] = []
        while True:
            try:
                event = await self.next_event(settle)
            except (TimeoutError, ConnectionError):
                return out
            if isinstance(event, Element):
                out.append(event)

    async def stanzas(self, settle: float = 0.05) -> list[Element]:
        return [e for e in await self.elements(settle) if e.name in ("message", "presence", "iq")]

    async def stream_error(self) -> Element:
        return await self.expect(lambda e: e.name == "error" and e.xmlns == ns.STREAM)

    # -- negotiation --------------------------------------------------------------------------
    async def open(self) -> Element:
        self.send(HEADER)
        opened = await self.next_event()
        assert isinstance(opened, StreamOpened), opened
        return await self.expect("features")

    async def login(self, user: str, resource: str = "res", password: str = "secret") -> str:
        """RFC 6120: PLAIN, restart, bind. Returns the bound JID."""
        await self.open()
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{plain}</auth>")
        assert (await self.expect(lambda e: e.xmlns == ns.SASL)).name == "success"
        self.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
        await self.open()
        bind = f"<bind xmlns='{ns.BIND}'><resource>{resource}</resource></bind>"
        self.send(f"<iq type='set' id='b'>{bind}</iq>")
        reply = await self.expect("iq")
        self.jid = reply.find("bind", ns.BIND).find_text("jid")  # type: ignore[union-attr]
        return self.jid

    async def authenticate(
        self, user: str, inline: str = "", password: str = "secret", agent: str | None = None
    ) -> Element:
        """SASL2 PLAIN with inline requests; returns <success/> or <failure/>."""
        await self.open()
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        ua = f"<user-agent id='{agent}'><software>t</software></user-agent>" if agent else ""
        self.send(
            f"<authenticate xmlns='{ns.SASL2}' mechanism='PLAIN'>"
            f"<initial-response>{plain}</initial-response>{ua}{inline}</authenticate>"
        )
        return await self.expect(lambda e: e.xmlns == ns.SASL2)

    async def ended(self) -> None:
        await asyncio.wait_for(self.task, TIMEOUT)


class C2SHarness:
    """A kernel with modules plus c2s sessions over memory transports."""

    def __init__(self, server: Server, settings: C2SSettings, bindings: Mapping[str, bytes]):
        self.server = server
        self.settings = settings
        self.bindings = bindings
        self.node = C2SNode(
            node="node1",
            clock=server.clock,
            hooks=server.hooks,
            iq=server.iq,
            router=server.router,
            sessions=server.sessions,
            accounts=server.accounts,
        )
        self.wires: list[Wire] = []
        self._ports = iter(range(40000, 50000))

    def connect(self) -> Wire:
        wire = Wire(self, MemoryTransport(next(self._ports), self.bindings))
        self.wires.append(wire)
        return wire

    async def logged_in(self, user: str, resource: str = "res") -> Wire:
        wire = self.connect()
        await wire.login(user, resource)
        return wire

    async def stop(self) -> None:
        for wire in self.wires:
            if not wire.task.done():
                wire.session.shutdown()
        tasks = [w.task for w in self.wires]
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.server.stop()


async def start_harness(
    modules: Mapping[str, Any],
    users: tuple[str, ...] = ("alice", "bob"),
    bindings: Mapping[str, bytes] | None = None,
    **settings: Any,
) -> C2SHarness:
    server = Server()
    await server.start(modules)
    for user in users:
        await server.register(user)
    c2s = C2SSettings(hosts=frozenset({"localhost"}), tls_mode="tls", **settings)
    if bindings is None:
        bindings = {"tls-exporter": CB_EXPORTER, "tls-server-end-point": CB_END_POINT}
    return C2SHarness(server, c2s, bindings)


BASE_MODULES: dict[str, Any] = {"mod_presence": None, "mod_roster": None, "mod_offline": None}


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(BASE_MODULES)
    yield h
    await h.stop()


async def test_a_client_logs_in_over_a_memory_transport(harness: C2SHarness) -> None:
    alice = await harness.logged_in("alice", "phone")
    assert alice.jid == "alice@localhost/phone"
    [record] = harness.server.sessions.user_sessions(alice.session.jid)
    assert record.jid == alice.session.jid
    await alice.close()
    assert harness.server.sessions.user_sessions(alice.session.jid) == []


async def test_a_dropped_connection_without_stream_management_ends_the_session(
    harness: C2SHarness,
) -> None:
    alice = await harness.logged_in("alice")
    alice.drop()
    await alice.ended()
    assert harness.server.sessions.all_sessions() == []


async def test_the_features_after_sasl_are_built_once_per_host_and_follow_the_handlers() -> None:
    h = await start_harness({**BASE_MODULES, "mod_csi": None, "mod_stream_management": None})
    try:

        async def features_after_sasl() -> list[tuple[str, str]]:
            wire = h.connect()
            await wire.open()
            plain = base64.b64encode(b"\0alice\0secret").decode()
            wire.send(f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{plain}</auth>")
            await wire.expect("success")
            wire.parser = XmlStream(max_stanza_size=10_000_000, max_depth=1000)
            features = await wire.open()
            await wire.close()
            return [(e.name, e.xmlns) for e in features.elements()]

        first = await features_after_sasl()
        assert ("sm", ns.SM) in first and ("csi", ns.CSI) in first and ("bind", ns.BIND) in first
        assert await features_after_sasl() == first  # from the cache the second time
        assert [k for k in h.node.features_cache if k[0] == "post-sasl"]
        csi = h.server.ctx.module("mod_csi")
        h.server.hooks.remove_owner(csi)  # the handlers changed: built again
        assert await features_after_sasl() == [f for f in first if f[0] != "csi"]
    finally:
        await h.stop()
