#!/usr/bin/env python3
"""CPU that replicating the `session` table costs per login, writer and peer together.

Two cluster nodes in two processes over loopback TCP (the peer is a child process). The
writer plays `--logins` logins, `--concurrency` at a time, each doing what a login and
logout do to the session table: insert the row (bind), rewrite it with the initial
presence, rewrite it without presence (unavailable), delete it; every write awaited as
the session manager does. `--rate` paces logins (an unsaturated server handles fewer
writes per loop turn). It prints the CPU seconds of both processes per login, and the
same writer alone (no peer: the local cost), so the difference is the replication.

  .venv/bin/python bench/cluster/replication_cpu.py --logins 20000 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

from meerkat.cluster import Cluster, ClusterConfig

SECRET = b"bench"
PRESENCE = "<presence xmlns='jabber:client'><priority>0</priority><c hash='sha-1'/></presence>"
TICK = os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def peer_main(address: str) -> None:
    """The peer process: a node with the table, joined by the writer; runs until stdin ends."""
    node = Cluster(ClusterConfig(node_name="peer", secret=SECRET, listen_address="127.0.0.1:0"))
    await node.start()
    node.create_table("session")
    print(node.address, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await node.stop()


async def play(opts: argparse.Namespace, with_peer: bool) -> dict[str, float]:
    writer = Cluster(ClusterConfig(node_name="writer", secret=SECRET, listen_address="127.0.0.1:0"))
    await writer.start()
    table = writer.create_table("session")
    peer = None
    if with_peer:
        peer = subprocess.Popen(
            [sys.executable, __file__, "--peer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert peer.stdout is not None
        address = peer.stdout.readline().strip()
        peer_id = await writer.node.connect(address)
        await writer.tables.join("session", peer_id)
    interval = opts.concurrency / opts.rate if opts.rate else 0.0
    numbers = iter(range(opts.logins))

    async def client() -> None:
        """One of `concurrency` clients: logs in and out again and again."""
        for i in numbers:
            key = ("localhost", f"user{i}", f"res{i}", f"{i}.1@writer")
            await table.insert(key, ["writer", 0, {}])
            await table.insert(key, ["writer", 0, {"presence": PRESENCE}])
            await table.insert(key, ["writer", None, {}])
            await table.delete(key)
            if interval:
                await asyncio.sleep(interval)

    try:
        start_cpu, start_peer = own_cpu(), child_cpu(peer.pid) if peer else 0.0
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(opts.concurrency)))
        wall = time.perf_counter() - start
        writer_cpu = own_cpu() - start_cpu
        peer_cpu = child_cpu(peer.pid) - start_peer if peer else 0.0
    finally:
        await writer.stop()
        if peer is not None:
            assert peer.stdin is not None
            peer.stdin.close()
            peer.wait(10)
    n = opts.logins
    return {
        "peer": with_peer,
        "logins_per_s": round(n / wall),
        "writer_us_per_login": round(1e6 * writer_cpu / n, 1),
        "peer_us_per_login": round(1e6 * peer_cpu / n, 1),
        "total_us_per_login": round(1e6 * (writer_cpu + peer_cpu) / n, 1),
    }


async def main(opts: argparse.Namespace) -> None:
    alone = await play(opts, with_peer=False)
    paired = await play(opts, with_peer=True)
    print(json.dumps(alone))
    print(json.dumps(paired))
    extra = paired["total_us_per_login"] - alone["total_us_per_login"]
    print(f"replication: {extra:.1f} µs CPU per login (writer + peer)")


if __name__ == "__main__":
    import uvloop

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logins", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.0, help="about this many logins/s (0: at once)")
    p.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    options = p.parse_args()
    if options.peer:
        uvloop.run(peer_main(""))
    else:
        uvloop.run(main(options))
