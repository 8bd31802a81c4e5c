#!/usr/bin/env python3
"""How fast a new node becomes fully joined, and how fast a dead node is cleaned up.

Real `meerkat` processes on loopback with one shared SQLite file (data and discovery).

  join     with `--base` nodes running, start one more node, `--rounds` times: seconds from
           the process start to its start-up banner (Python start, database, cluster join,
           modules, listeners) and to every node's `cets systemInfo` listing all nodes as
           joined; plus the cluster part alone, from the node's own log (database opened ->
           cluster started, which includes the first discovery round and every join).
  cleanup  `--sessions` clients on node 3, each a contact of a user on node 1; kill -9
           node 3 and time: its rows gone from node 1's session table (routing is right
           again) and the last unavailable presence received by that contact (the hooks
           ran for every session).

  .venv/bin/python bench/cluster/membership.py --sessions 300
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    MeerkatProcess,
    Processes,
    RawClient,
    fast_nodes,
    login,
    register,
    shared_sqlite,
    start_all,
)


def _log_time(node: MeerkatProcess, pattern: str) -> float:
    for line in node.output().splitlines():
        if re.search(pattern, line):
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise AssertionError(f"{pattern!r} not in {node.name}'s log")


async def joined(nodes: list[MeerkatProcess]) -> bool:
    names = sorted(n.name for n in nodes)
    for n in nodes:
        if (await n.system_info())["joinedNodes"] != names:
            return False
    return True


async def bench_join(workdir: Path, base: int, rounds: int) -> dict[str, object]:
    group = Processes(workdir, await shared_sqlite(workdir))
    try:
        nodes = fast_nodes(group, *(f"node{i}@localhost" for i in range(1, base + 1)))
        await start_all(nodes)
        await group.wait_clean(nodes)
        banner, full, inner = [], [], []
        for r in range(rounds):
            (new,) = fast_nodes(group, f"extra{r}@localhost")
            t0 = time.monotonic()
            new.start()
            await new.wait_started(60)
            banner.append(time.monotonic() - t0)
            nodes.append(new)
            while not await joined(nodes):
                await asyncio.sleep(0.02)
            full.append(time.monotonic() - t0)
            inner.append(_log_time(new, r"cluster_started") - _log_time(new, r"db_opened"))
    finally:
        group.close()
    return {
        "bench": "node_join",
        "cluster_size_before": base,
        "to_banner_s": [round(x, 3) for x in banner],
        "to_joined_everywhere_s": [round(x, 3) for x in full],
        "cluster_start_in_node_s": [round(x, 3) for x in inner],
    }


async def bench_cleanup(workdir: Path, sessions: int) -> dict[str, object]:
    group = Processes(workdir, await shared_sqlite(workdir))
    clients: list[RawClient] = []
    try:
        n1, n2, n3 = fast_nodes(group, "node1@localhost", "node2@localhost", "node3@localhost")
        await start_all([n1, n2, n3])
        await group.wait_clean([n1, n2, n3])
        users = [f"v{i}" for i in range(sessions)]
        await register(n1, ["watcher", *users])
        for i in range(0, sessions, 50):
            await n1.graphql(
                'mutation { roster { subscribeToAll(user: {jid: "watcher@localhost", '
                'name: "w"}, contacts: ['
                + ", ".join(f'{{jid: "{u}@localhost", name: "{u}"}}' for u in users[i : i + 50])
                + "]) } }"
            )
        watcher = await login(n1, "watcher", "w")
        clients.append(watcher)
        unavailable = 0
        last_unavailable = 0.0
        killed_at: float | None = None

        async def watch() -> None:  # reads all along: a client that does not read is cut off
            nonlocal unavailable, last_unavailable
            while True:
                el = await watcher.expect("presence", 600)
                frm = el.attrs.get("from", "")
                if (
                    killed_at is not None
                    and el.attrs.get("type") == "unavailable"
                    and frm[-2:] == "/r"
                ):
                    unavailable += 1
                    last_unavailable = time.monotonic()

        watching = asyncio.create_task(watch())
        watcher.send("<presence/>")
        sem = asyncio.Semaphore(20)

        async def one(user: str) -> None:
            async with sem:
                c = await login(n3, user, "r")
                c.send("<presence/>")
                clients.append(c)

        await asyncio.gather(*(one(u) for u in users))
        count_query = "{ session { countSessions } }"
        while (await n1.graphql(count_query))["session"]["countSessions"] < sessions + 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)
        t0 = killed_at = time.monotonic()
        n3.kill()
        while (await n1.graphql(count_query))["session"]["countSessions"] > 1:
            await asyncio.sleep(0.01)
        rows_gone = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while unavailable < sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    finally:
        for c in clients:
            c.writer.close()
        group.close()
    return {
        "bench": "node_cleanup",
        "sessions_on_dead_node": sessions,
        "rows_gone_s": round(rows_gone, 3),
        "unavailable_received": unavailable,
        "all_unavailable_s": round(last_unavailable - t0, 3) if unavailable else None,
    }


async def main(args: argparse.Namespace) -> None:
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="meerkat-bench-") as tmp:
        print(json.dumps(await bench_join(Path(tmp) / "join", args.base, args.rounds)), flush=True)
    with tempfile.TemporaryDirectory(prefix="meerkat-bench-") as tmp:
        print(json.dumps(await bench_cleanup(Path(tmp) / "cleanup", args.sessions)), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sessions", type=int, default=300)
    uvloop.run(main(p.parse_args()))
