#!/usr/bin/env python3
"""Messages per second between users on different nodes versus on the same node.

Two node processes. In both scenarios every node serves half of the senders and half of
the receivers, so the two runs use the same processes and the same client load; only the
placement differs:

  same   pairs (node1 -> node1) and (node2 -> node2): every message stays on its node;
  cross  pairs (node1 -> node2) and (node2 -> node1): every message crosses the link.

Each sender keeps `--window` messages in flight (a receiver's message releases the next),
after a warm-up the receivers' count over `--seconds` gives the rate. The load generator
runs in this process (uvloop), so on a small machine it competes with the nodes for CPU:
the ratio cross/same is the figure to read, not the absolute rate.

  .venv/bin/python bench/cluster/throughput.py --pairs 20 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Processes, RawClient, fast_nodes, login, register, shared_sqlite, start_all

BODY = "x" * 64


class Pair:
    def __init__(self, sender: RawClient, receiver: RawClient, to: str, window: int) -> None:
        self.sender = sender
        self.receiver = receiver
        self.stanza = f"<message to='{to}' type='chat'><body>{BODY}</body></message>".encode()
        self.window = window
        self.received = 0

    async def pump(self, stop: asyncio.Event) -> None:
        writer = self.sender.writer
        writer.write(self.stanza * self.window)
        reader = self.receiver.reader
        tail = b""
        while not stop.is_set():
            data = await reader.read(262144)
            if not data:
                raise ConnectionError("receiver closed")
            chunk = tail + data
            n = chunk.count(b"</message>")
            tail = chunk[-9:]
            if n:
                self.received += n
                writer.write(self.stanza * n)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def run_scenario(
    nodes: list,
    users: list[str],
    cross: bool,
    pairs: int,
    window: int,
    warmup: float,
    seconds: float,
) -> tuple[float, float]:
    clients: list[RawClient] = []
    work = []
    for i in range(pairs):
        home = nodes[i % 2]
        away = nodes[(i + 1) % 2] if cross else home
        s = await login(home, users[2 * i], "s")
        r = await login(away, users[2 * i + 1], "r")
        clients += [s, r]
        work.append(Pair(s, r, f"{users[2 * i + 1]}@localhost/r", window))
    await asyncio.sleep(0.5)  # every session row replicated
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.pump(stop)) for p in work]
    await asyncio.sleep(warmup)
    before = sum(p.received for p in work)
    cpu_before = sum(cpu_seconds(n.proc.pid) for n in nodes)
    start = time.monotonic()
    await asyncio.sleep(seconds)
    count = sum(p.received for p in work) - before
    rate = count / (time.monotonic() - start)
    per_cpu = count / (sum(cpu_seconds(n.proc.pid) for n in nodes) - cpu_before)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        c.writer.close()
    await asyncio.sleep(1.0)  # sessions closed, queues drained
    return rate, per_cpu


async def main(args: argparse.Namespace) -> dict[str, object]:
    gc.freeze()  # the generator allocates as much per message as a node: same treatment
    gc.set_threshold(20_000, 20, 20)
    with tempfile.TemporaryDirectory(prefix="meerkat-bench-") as tmp:
        workdir = Path(tmp)
        group = Processes(workdir, await shared_sqlite(workdir))
        try:
            nodes = fast_nodes(group, "node1@localhost", "node2@localhost")
            await start_all(nodes)
            await group.wait_clean(nodes)
            users = [f"u{i}" for i in range(2 * args.pairs)]
            await register(nodes[0], users)
            results: dict[str, list[float]] = {"same": [], "cross": []}
            per_cpu: dict[str, list[float]] = {"same": [], "cross": []}
            for _ in range(args.rounds):
                for scenario in args.scenarios:
                    rate, cpu_rate = await run_scenario(
                        nodes, users, scenario == "cross", args.pairs, args.window,
                        args.warmup, args.seconds,
                    )  # fmt: skip
                    results[scenario].append(rate)
                    per_cpu[scenario].append(cpu_rate)
                    print(
                        f"{scenario:5s} {rate:8.0f} msg/s  {cpu_rate:8.0f} msg per node CPU-second",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            group.close()

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] if values else float("nan")

    same, cross = median(results["same"]), median(results["cross"])
    same_cpu, cross_cpu = median(per_cpu["same"]), median(per_cpu["cross"])
    return {
        "bench": "cluster_throughput",
        "pairs": args.pairs,
        "window": args.window,
        "same_node_msgs_per_s": round(same),
        "cross_node_msgs_per_s": round(cross),
        "cross_over_same": round(cross / same, 3),
        "same_node_msgs_per_cpu_s": round(same_cpu),
        "cross_node_msgs_per_cpu_s": round(cross_cpu),
        "cross_over_same_per_cpu": round(cross_cpu / same_cpu, 3),
        "rounds": results,
        "rounds_per_cpu": per_cpu,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scenarios", nargs="+", default=["same", "cross"], choices=["same", "cross"])
    print(json.dumps(uvloop.run(main(p.parse_args()))))
