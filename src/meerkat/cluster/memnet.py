"""An in-memory network for running many cluster nodes in one process (tests, tools).

Each node gets a `MemoryTransport` bound to its address. Streams are pairs of
asyncio.StreamReader fed synchronously, so delivery is FIFO and needs no sockets.
`partition` silently drops traffic between two addresses (a netsplit: only
heartbeats notice it), `disconnect` closes their streams (a reset), `heal` undoes both.
"""

from __future__ import annotations

import asyncio

from .link import ByteReader, ByteWriter, InboundHandler, Listener


class _Pipe:
    """Both directions of one connection; closing either end closes both."""

    def __init__(self, net: MemoryNetwork, a: str, b: str) -> None:
        self.net = net
        self.ends = (a, b)
        self.readers = (asyncio.StreamReader(), asyncio.StreamReader())
        self.closed = False

    def send(self, from_side: int, data: bytes) -> None:
        if self.closed or self.net.is_partitioned(*self.ends):
            return
        self.readers[1 - from_side].feed_data(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for r in self.readers:
                r.feed_eof()
            self.net.pipes.discard(self)


class _Writer:
    def __init__(self, pipe: _Pipe, side: int) -> None:
        self._pipe = pipe
        self._side = side

    def write(self, data: bytes) -> None:
        self._pipe.send(self._side, data)

    @property
    def transport(self) -> _Writer:
        """Its own write buffer: always empty (delivery is synchronous)."""
        return self

    def get_write_buffer_size(self) -> int:
        return 0

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        self._pipe.close()

    async def wait_closed(self) -> None:
        return None


class _MemoryListener:
    def __init__(self, net: MemoryNetwork, address: str) -> None:
        self._net = net
        self.address = address

    async def close(self) -> None:
        self._net.listeners.pop(self.address, None)


class MemoryNetwork:
    """A set of addresses that can reach each other unless partitioned."""

    def __init__(self) -> None:
        self.listeners: dict[str, InboundHandler] = {}
        self.pipes: set[_Pipe] = set()
        self._blocked: set[frozenset[str]] = set()

    def transport(self, address: str) -> MemoryTransport:
        return MemoryTransport(self, address)

    def is_partitioned(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._blocked

    def partition(self, group1: list[str], group2: list[str]) -> None:
        """Drop all traffic between the two groups of addresses (links stay 'open')."""
        for a in group1:
            for b in group2:
                self._blocked.add(frozenset((a, b)))

    def disconnect(self, a: str, b: str) -> None:
        """Reset every connection between two addresses."""
        for pipe in list(self.pipes):
            if set(pipe.ends) == {a, b}:
                pipe.close()

    def heal(self) -> None:
        self._blocked.clear()

    async def open(self, src: str, dst: str) -> tuple[ByteReader, ByteWriter]:
        handler = self.listeners.get(dst)
        if handler is None or self.is_partitioned(src, dst):
            raise ConnectionRefusedError(f"memnet: {dst} unreachable from {src}")
        pipe = _Pipe(self, src, dst)
        self.pipes.add(pipe)
        handler(pipe.readers[1], _Writer(pipe, 1))
        await asyncio.sleep(0)
        return pipe.readers[0], _Writer(pipe, 0)


class MemoryTransport:
    """The `Transport` of one node on a MemoryNetwork."""

    def __init__(self, net: MemoryNetwork, address: str) -> None:
        self._net = net
        self.address = address

    async def listen(self, address: str, on_connection: InboundHandler) -> Listener:
        if address != self.address:
            raise ValueError(f"memnet transport for {self.address} cannot listen on {address}")
        self._net.listeners[address] = on_connection
        return _MemoryListener(self._net, address)

    async def connect(self, address: str) -> tuple[ByteReader, ByteWriter]:
        return await self._net.open(self.address, address)
