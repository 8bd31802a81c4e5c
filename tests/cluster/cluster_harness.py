"""Test helpers: many cluster nodes in one process: a memory network and a manual clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from meerkat.cluster import Cluster, ClusterConfig, LinkConfig, ManualClock, MemoryNetwork
from meerkat.cluster.discovery import DiscoveryConfig, MemoryRegistry

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
    ) -> Cluster:
        address = f"mem:{name}"
        c = Cluster(
            ClusterConfig(
                node_name=name,
                secret=secret,
                listen_address=address,
                link=FAST_LINKS,
                discovery=config or DiscoveryConfig(),
            ),
            transport=self.net.transport(address),
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
