"""Test helpers: many cluster nodes in one process: a memory network and a manual clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from meerkat.cluster import Cluster, ClusterConfig, LinkConfig, ManualClock, MemoryNetwork, wire
from meerkat.cluster.discovery import DiscoveryConfig, MemoryRegistry
from meerkat.cluster.link import (
    ByteReader,
    ByteWriter,
    InboundHandler,
    Listener,
    Transport,
    WriteBuffer,
)

FAST_LINKS = LinkConfig(
    heartbeat_interval=1.0, heartbeat_misses=3, handshake_timeout=5.0, connect_timeout=5.0
)


async def wait_for(
    cond: Callable[[], bool],
    *,
    timeout: float = 5.0,
    clock: ManualClock | None = None,
    step: float = 0.0,
) -> None:
    """Poll `cond` (real time); with `clock` and `step`, move virtual time each round."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        if clock is not None and step:
            clock.advance(step)
        await asyncio.sleep(0.001)


async def advance(clock: ManualClock, seconds: float, step: float = 0.5) -> None:
    """Move virtual time in small steps so heartbeats keep healthy links up."""
    while seconds > 0:
        clock.advance(min(step, seconds))
        seconds -= step
        await asyncio.sleep(0.001)


class Harness:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.net = MemoryNetwork()
        self.registry = MemoryRegistry()
        self.clusters: list[Cluster] = []
        self._boots = itertools.count(1)

    async def node(
        self,
        name: str,
        *,
        secret: bytes = b"secret",
        boot: str | None = None,
        discovery: bool = False,
        config: DiscoveryConfig | None = None,
        transport: Transport | None = None,
    ) -> Cluster:
        """A started node at `mem:NAME`; `transport` replaces its memory transport."""
        address = f"mem:{name}"
        c = Cluster(
            ClusterConfig(
                node_name=name,
                secret=secret,
                listen_address=address,
                link=FAST_LINKS,
                discovery=config or DiscoveryConfig(),
            ),
            transport=transport or self.net.transport(address),
            clock=self.clock,
            boot_id=boot or f"boot{next(self._boots)}",
        )
        await c.start(self.registry.backend(name, address) if discovery else None)
        self.clusters.append(c)
        return c

    async def nodes(self, *names: str, **kw: object) -> list[Cluster]:
        return [await self.node(n, **kw) for n in names]  # type: ignore[arg-type]

    async def connect_all(self, *clusters: Cluster) -> None:
        for a, b in itertools.combinations(clusters, 2):
            await a.node.connect(b.address)
        await wait_for(lambda: all(len(c.node.peers()) >= len(clusters) - 1 for c in clusters))

    async def joined(self, table: str, *clusters: Cluster, **kw: object) -> None:
        """Create `table` on each cluster and join them all into one segment."""
        await self.connect_all(*clusters)
        for c in clusters:
            if table not in c.tables.tables:
                c.create_table(table, **kw)  # type: ignore[arg-type]
        for c in clusters[1:]:
            await clusters[0].tables.join(table, c.id)

    async def stop(self, c: Cluster) -> None:
        await c.stop()
        if c in self.clusters:
            self.clusters.remove(c)

    async def close(self) -> None:
        for c in list(self.clusters):
            await self.stop(c)


class CrossedDials:
    """A node's transport that makes its dials cross its peers' dials: what the node's own
    dials receive is held back until it has accepted a link (sent its welcome), so it learns
    whom its dial reached only after accepting a dial from that same peer."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.accepted = asyncio.Event()
        self.held = 0
        """Reads of our own dials waiting for `accepted`."""

    async def listen(self, address: str, on_connection: InboundHandler) -> Listener:
        welcome = wire.encode(["welcome"])

        def watch(data: bytes) -> None:
            if data == welcome:
                self.accepted.set()

        return await self._inner.listen(
            address, lambda r, w: on_connection(r, _WatchedWriter(w, watch))
        )

    async def connect(self, address: str) -> tuple[ByteReader, ByteWriter]:
        reader, writer = await self._inner.connect(address)
        return _HeldReader(reader, self), writer


class _HeldReader:
    def __init__(self, inner: ByteReader, dials: CrossedDials) -> None:
        self._inner = inner
        self._dials = dials

    async def read(self, n: int = -1) -> bytes:
        if not self._dials.accepted.is_set():
            self._dials.held += 1
            await self._dials.accepted.wait()
            self._dials.held -= 1
        return await self._inner.read(n)


class _WriterProxy:
    """A ByteWriter passing everything but `write` through to `inner`."""

    def __init__(self, inner: ByteWriter) -> None:
        self._inner = inner

    @property
    def transport(self) -> WriteBuffer:
        return self._inner.transport

    async def drain(self) -> None:
        await self._inner.drain()

    def close(self) -> None:
        self._inner.close()

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()


class _WatchedWriter(_WriterProxy):
    def __init__(self, inner: ByteWriter, watch: Callable[[bytes], None]) -> None:
        super().__init__(inner)
        self._watch = watch

    def write(self, data: bytes) -> None:
        self._inner.write(data)
        self._watch(data)


class LostReplies:
    """A node's transport that loses its replies to chosen calls: the first `count` calls
    it receives on `channel` whose payload satisfies `match` are handled, but their reply
    frames never leave (as when the link they were sent on closes). `lost` counts them."""

    def __init__(
        self,
        inner: Transport,
        channel: str,
        *,
        count: int = 1,
        match: Callable[[Any], bool] = lambda payload: True,
    ) -> None:
        self._inner = inner
        self._channel = channel
        self._match = match
        self.remaining = count
        self.lost = 0

    async def listen(self, address: str, on_connection: InboundHandler) -> Listener:
        return await self._inner.listen(address, lambda r, w: on_connection(*self._wrap(r, w)))

    async def connect(self, address: str) -> tuple[ByteReader, ByteWriter]:
        return self._wrap(*await self._inner.connect(address))

    def _wrap(self, reader: ByteReader, writer: ByteWriter) -> tuple[ByteReader, ByteWriter]:
        doomed: set[int] = set()
        return _TappedReader(reader, self, doomed), _FilteredWriter(writer, self, doomed)

    def _chosen(self, msg: Any) -> bool:
        if (
            self.remaining > 0
            and isinstance(msg, list)
            and len(msg) == 4
            and msg[0] == "c"
            and msg[2] == self._channel
            and self._match(msg[3])
        ):
            self.remaining -= 1
            return True
        return False


class _TappedReader:
    """Reads through; notes the ids of the chosen calls among the frames read."""

    def __init__(self, inner: ByteReader, lost: LostReplies, doomed: set[int]) -> None:
        self._inner = inner
        self._lost = lost
        self._doomed = doomed
        self._decoder = wire.FrameDecoder()

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        self._decoder.feed(data)
        for msg in self._decoder.messages():
            if self._lost._chosen(msg):
                self._doomed.add(msg[1])
        return data


class _FilteredWriter(_WriterProxy):
    """Writes through, minus the reply frames to the noted calls."""

    def __init__(self, inner: ByteWriter, lost: LostReplies, doomed: set[int]) -> None:
        super().__init__(inner)
        self._lost = lost
        self._doomed = doomed
        self._decoder = wire.FrameDecoder()

    def write(self, data: bytes) -> None:
        self._decoder.feed(data)
        kept = []
        for msg in self._decoder.messages():
            if isinstance(msg, list) and len(msg) == 4 and msg[0] == "r" and msg[1] in self._doomed:
                self._doomed.discard(msg[1])
                self._lost.lost += 1
            else:
                kept.append(wire.encode(msg))
        if kept:
            self._inner.write(b"".join(kept))
