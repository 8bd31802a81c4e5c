"""Measure ReplicatedTable write latency with N in-process nodes over loopback TCP.

Run: .venv/bin/python tests/cluster/bench_table_latency.py 3 8
(Not a test: pytest does not collect it.)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from meerkat.cluster import Cluster, ClusterConfig


async def bench(n: int, writes: int = 2000, concurrency: int = 100) -> None:
    nodes = []
    for i in range(n):
        c = Cluster(ClusterConfig(node_name=f"n{i}", secret=b"bench", listen_address="127.0.0.1:0"))
        await c.start()
        c.create_table("t")
        nodes.append(c)
    try:
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                await a.node.connect(b.address)
        for b in nodes[1:]:
            await nodes[0].tables.join("t", b.id)
        t = nodes[0].table("t")
        lat = []
        for i in range(writes):
            start = time.perf_counter()
            await t.insert(("user", i), {"node": "n0", "prio": 1})
            lat.append((time.perf_counter() - start) * 1e6)
        lat.sort()
        start = time.perf_counter()
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await t.insert(("c", i), i)

        await asyncio.gather(*(one(i) for i in range(writes * 5)))
        rate = writes * 5 / (time.perf_counter() - start)
        print(
            f"{n} nodes: sequential insert median {statistics.median(lat):.0f} us, "
            f"p99 {lat[int(len(lat) * 0.99)]:.0f} us; "
            f"{concurrency} in flight: {rate:.0f} writes/s"
        )
    finally:
        for c in nodes:
            await c.stop()


async def main(sizes: list[int]) -> None:
    for n in sizes:
        await bench(n)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [3, 8]))
