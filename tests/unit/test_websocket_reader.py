"""`WebSocketTransport.run_reader`: frames pushed to the session's sink, honouring pauses."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiohttp import WSMsgType

from meerkat.listeners.websocket import WebSocketTransport


class FakeWebSocket:
    """Hands out the frames (or raises the errors) it is given, one per `receive`."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[str | BaseException] = asyncio.Queue()
        self.closed = False

    async def receive(self, timeout: float | None = None) -> Any:
        item = await self.frames.get()
        if isinstance(item, BaseException):
            raise item
        return SimpleNamespace(type=WSMsgType.TEXT, data=item)


def transport_on(ws: FakeWebSocket) -> WebSocketTransport:
    request: Any = SimpleNamespace(transport=None)
    return WebSocketTransport(ws, request, idle_timeout=None)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_reach_the_sink_in_order_and_a_pause_holds_the_next_back() -> None:
    ws = FakeWebSocket()
    transport = transport_on(ws)
    got: list[bytes] = []
    transport.start_reading(got.append)
    reader = asyncio.get_running_loop().create_task(transport.run_reader())
    ws.frames.put_nowait("<a/>")
    await settle()
    transport.pause_reading()
    ws.frames.put_nowait("<b/>")
    ws.frames.put_nowait("<c/>")
    await settle()
    assert got == [b"<a/>"]
    transport.resume_reading()
    await settle()
    assert got == [b"<a/>", b"<b/>", b"<c/>"]
    transport.close()  # by the session, whose endpoint then cancels the reader
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert got == [b"<a/>", b"<b/>", b"<c/>"]  # no end: the session knows it closed


async def test_a_connection_error_ends_the_input_once_without_keeping_its_traceback() -> None:
    ws = FakeWebSocket()
    transport = transport_on(ws)
    got: list[bytes] = []
    transport.start_reading(got.append)
    error = ConnectionResetError("reset by peer")
    ws.frames.put_nowait("<a/>")
    ws.frames.put_nowait(error)
    await asyncio.wait_for(transport.run_reader(), 1)
    assert got == [b"<a/>", b""]
    assert error.__traceback__ is None  # it would hold the reader's frame, hence the session
    transport.resume_reading()
    assert got == [b"<a/>", b""]
