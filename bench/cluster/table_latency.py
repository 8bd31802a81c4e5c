#!/usr/bin/env python3
"""Replicated table write latency with N node processes (default: 3 and 8).

Every node is its own process running the cluster layer alone (no XMPP), on loopback;
they find each other through a node list file (file discovery). Once the table is joined
on all N nodes, the measuring node times:

  sequential   one `insert` at a time: the time until every peer acknowledged it;
  concurrent   `--inflight` inserts outstanding: writes per second.

A write is applied locally, sent to every peer, and returns when all acknowledged, so the
latency grows with N (more acknowledgements to wait for, more work per write on the
writer). The peers run on the same machine: with N processes on few cores, the figures
include scheduling delays, which is also what N workers on one host see.

  .venv/bin/python bench/cluster/table_latency.py 3 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from meerkat.cluster import Cluster, ClusterConfig, DiscoveryConfig, FileBackend

SECRET = b"bench-table-latency-secret"
FAST = DiscoveryConfig(initial_interval=0.2, error_interval=0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_node(name: str, port: int, node_list: Path) -> Cluster:
    cluster = Cluster(
        ClusterConfig(
            node_name=name,
            secret=SECRET,
            listen_address=f"127.0.0.1:{port}",
            discovery=FAST,
        )
    )
    await cluster.start()
    cluster.create_table("t")
    cluster.start_discovery(FileBackend(node_list))
    return cluster


async def peer(name: str, port: int, node_list: Path) -> None:
    """A passive node: serves its table until its stdin closes."""
    cluster = await start_node(name, port, node_list)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await cluster.stop()


async def measure(n: int, writes: int, inflight: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="meerkat-table-") as tmp:
        ports = [free_port() for _ in range(n)]
        node_list = Path(tmp) / "nodes.txt"
        node_list.write_text("\n".join(f"127.0.0.1:{p}" for p in ports))
        peers = [
            subprocess.Popen(
                [sys.executable, __file__, "--peer", f"n{i}", str(ports[i]), str(node_list)],
                stdin=subprocess.PIPE,
            )
            for i in range(1, n)
        ]
        try:
            cluster = await start_node("n0", ports[0], node_list)
            table = cluster.table("t")
            start = time.monotonic()
            while len(table.nodes()) < n:
                if time.monotonic() - start > 60:
                    raise RuntimeError(f"only {table.nodes()} joined")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # let the other joins settle
            lat = []
            for i in range(writes):
                t0 = time.perf_counter()
                await table.insert(("seq", i), {"node": "n0", "priority": 1})
                lat.append((time.perf_counter() - t0) * 1e6)
            lat.sort()
            sem = asyncio.Semaphore(inflight)

            async def one(i: int) -> None:
                async with sem:
                    await table.insert(("conc", i), i)

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(writes * 5)))
            rate = writes * 5 / (time.perf_counter() - t0)
            await cluster.stop()
        finally:
            for p in peers:
                assert p.stdin is not None
                p.stdin.close()
            for p in peers:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return {
        "bench": "table_write_latency",
        "nodes": n,
        "sequential_median_us": round(statistics.median(lat)),
        "sequential_p99_us": round(lat[int(len(lat) * 0.99)]),
        "concurrent_inflight": inflight,
        "concurrent_writes_per_s": round(rate),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        uvloop.run(peer(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sizes", nargs="*", type=int, default=[3, 8])
    p.add_argument("--writes", type=int, default=2000)
    p.add_argument("--inflight", type=int, default=100)
    args = p.parse_args()
    for n in args.sizes:
        result = uvloop.run(measure(n, args.writes, args.inflight))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
