"""XMPP over WebSocket (RFC 7395): the `mod_websockets` handler of an HTTP listener.

Each upgraded request becomes a `WebSocketTransport` (framed: one text frame = one element)
and a `C2SSession` whose `run()` is the request's task. aiohttp hands frames out only to a
waiting `receive()`, so a reader task owned by the request pushes them to the session's sink
(honouring its pauses, c2s/transport.py). Writes never block: frames queue and a writer task
owned by the request sends them in order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Mapping
from typing import Any

from aiohttp import WSMsgType, web

from ..c2s.node import C2SNode
from ..c2s.session import C2SSession
from ..c2s.settings import C2SSettings
from ..c2s.transport import Sink
from .tcp import TlsMaterial
from .tls import ConnectionBindings

log = logging.getLogger(__name__)

SUBPROTOCOL = "xmpp"
FRAME_LIMIT_FACTOR = 4
"""Largest frame read, in units of the stanza size limit (a frame is one stanza plus framing)."""


def websocket_settings(base: C2SSettings, handler: Any, *, tls: bool) -> C2SSettings:
    """A WebSocket endpoint's session settings: the c2s ones, with the handler's limits.

    Without TLS on the HTTP listener there is nothing to upgrade to (ws:// is served on
    loopback or behind a TLS proxy), so `tls_mode` is "none"; PLAIN stays off on an insecure
    transport anyway."""
    return dataclasses.replace(
        base,
        tls_mode="tls" if tls else "none",
        max_stanza_size=handler.max_stanza_size or base.max_stanza_size,
        state_timeout=handler.c2s_state_timeout / 1000,
    )


class WebSocketTransport:
    """One client on a WebSocket: every read is one text frame, every write one frame."""

    framed = True

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        idle_timeout: float | None,
        tls: TlsMaterial | None = None,
    ) -> None:
        self._ws = ws
        self._request = request
        self._idle_timeout = idle_timeout
        self._tls = tls
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peer = peer or ("", 0)
        self._peer = (str(peer[0]), int(peer[1]))
        self._ssl_object: ssl.SSLObject | None = (
            request.transport.get_extra_info("ssl_object") if request.transport else None
        )
        self._secure = self._ssl_object is not None
        self._bindings: Mapping[str, bytes] | None = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._sink: Sink | None = None
        self._reading = asyncio.Event()
        """Set while the session takes frames."""

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def can_starttls(self) -> bool:
        return False

    @property
    def tls_version(self) -> str | None:
        return self._ssl_object.version() if self._ssl_object is not None else None

    def channel_bindings(self) -> Mapping[str, bytes]:
        """On wss://, the bindings of the TLS connection under the WebSocket (as on TCP)."""
        if self._bindings is None:
            obj = self._ssl_object
            if obj is None or self._tls is None:
                return {}
            self._bindings = ConnectionBindings(obj, self._tls.certificate_der)
        return self._bindings

    def start_reading(self, sink: Sink) -> None:
        self._sink = sink
        self._reading.set()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        if self._sink is not None:
            self._reading.set()

    async def run_reader(self) -> None:
        """Push frames to the session's sink while it reads, then b"" at the end (also when
        this task fails: the session must not wait for input that never comes)."""
        try:
            while True:
                await self._reading.wait()
                data = await self._receive()
                await self._reading.wait()  # a pause while receiving holds the frame back
                if not data or self._sink is None:
                    return
                self._sink(data)
        finally:
            sink, self._sink = self._sink, None
            if sink is not None:
                sink(b"")

    async def _receive(self) -> bytes:
        """The next text frame; b"" when the socket closes, errs, idles out or sends binary."""
        while True:
            try:
                msg = await self._ws.receive(timeout=self._idle_timeout)
            except TimeoutError:
                return b""
            except (ConnectionError, OSError) as exc:
                # aiohttp keeps the error to raise it again, and its traceback holds this
                # frame, hence the sink and the session: a reset connection would leave
                # them in a cycle for the collector's slow full passes.
                exc.__traceback__ = None
                return b""
            if msg.type == WSMsgType.TEXT:
                data: bytes = msg.data.encode()
                if data:
                    return data
                continue
            if msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            return b""  # CLOSE, CLOSING, CLOSED, ERROR, or BINARY (not XMPP, RFC 7395 §3.2)

    def write(self, data: bytes) -> None:
        if self._closing or self._ws.closed:
            return
        self._queue.append(data)
        self._queued += len(data)
        self._wakeup.set()

    def buffered(self) -> int:
        transport = self._request.transport
        return self._queued + (transport.get_write_buffer_size() if transport else 0)

    async def start_tls(self) -> None:
        raise RuntimeError("STARTTLS is not available on WebSocket")

    def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        self._sink = None
        self._reading.set()  # the reader ends

    async def run_writer(self) -> None:
        """Send queued frames in order; close the socket once `close()` was called."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    data = self._queue.popleft()
                    self._queued -= len(data)
                    await self._ws.send_str(data.decode())
                if self._closing:
                    break
        except (ConnectionError, OSError, RuntimeError):
            pass  # the peer went away: the reader sees the end
        finally:
            self._queue.clear()
            self._queued = 0
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await asyncio.wait_for(self._ws.close(), 2.0)


class WebSocketEndpoint:
    """The request handler of one `mod_websockets` path; tracks its connections."""

    def __init__(
        self,
        node: C2SNode,
        settings: C2SSettings,
        handler: Any,
        *,
        tls: TlsMaterial | None = None,
    ) -> None:
        self.node = node
        self.settings = settings
        self.handler = handler
        self.tls = tls
        """The listener's TLS material (wss://), for channel bindings."""
        self.accepting = True
        self.connections: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if SUBPROTOCOL not in {p.strip() for p in offered.split(",")}:
            return web.Response(status=400, text="the xmpp subprotocol is required\n")
        if not self.accepting:
            return web.Response(status=503, text="shutting down\n")
        ping = self.handler.ping_rate
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,),
            heartbeat=ping / 1000 if ping else None,
            # The XML parser enforces max_stanza_size with a policy-violation stream error, as
            # on TCP; aiohttp's own limit (close code 1009, no stream error) only stops frames
            # far beyond it before they are buffered whole.
            max_msg_size=FRAME_LIMIT_FACTOR * self.settings.max_stanza_size,
        )
        await ws.prepare(request)
        timeout = self.handler.timeout
        idle = None if timeout == "infinity" else timeout / 1000
        transport = WebSocketTransport(ws, request, idle_timeout=idle, tls=self.tls)
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        loop = asyncio.get_running_loop()
        reader = loop.create_task(transport.run_reader())
        writer = loop.create_task(transport.run_writer())
        try:
            await C2SSession(self.node, self.settings, transport).run()
        finally:
            self.connections.discard(task)
            transport.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            try:
                await asyncio.wait_for(writer, 5.0)
            except TimeoutError:
                pass
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        return ws

    async def wait_closed(self, timeout: float) -> None:
        """Wait for the connections to end (after their sessions were told to), then cancel."""
        self.accepting = False
        if self.connections:
            await asyncio.wait(list(self.connections), timeout=timeout)
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.wait(list(self.connections), timeout=1.0)
