"""A loopback TCP proxy a test can cut, blackhole and restore, to play a database outage."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Listens on an ephemeral 127.0.0.1 port and forwards to (host, port).

    `cut()` closes every connection and refuses new ones (server down); `blackhole()`
    accepts connections but forwards nothing (server hung); `restore()` forwards again.
    `upstream_ports()` are the local ports of the forwarded connections: how the database
    lists the sessions that came through the proxy (client_port, PROCESSLIST host).
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._upstream: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._blackholed = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self._blackholed:
            return  # keep the socket open, never answer
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        self._upstream.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    def upstream_ports(self) -> list[int]:
        return [w.get_extra_info("sockname")[1] for w in self._upstream if not w.is_closing()]

    async def _drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._upstream.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cut(self) -> None:
        """Server down: connections reset, port closed."""
        await self._stop_listening()
        await self._drop_connections()

    async def blackhole(self) -> None:
        """Server hung: existing connections dropped, new ones accepted and ignored."""
        await self._drop_connections()
        self._blackholed = True

    async def restore(self) -> None:
        """Server back."""
        self._blackholed = False
        if self._server is None:
            await self.start()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self._stop_listening()
        await self._drop_connections()
