"""Shared helpers of the cluster benchmarks: real `meerkat` processes and raw clients.

The node processes come from the cluster test suite's helpers (tests/cluster_xmpp/procs.py)
so a benchmark starts nodes exactly the way the tests do: loopback, free ports, one shared
database for data and discovery.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from cluster_xmpp.procs import MeerkatProcess, Processes  # noqa: E402
from e2e.rawxmpp import RawClient  # noqa: E402
from meerkat.db import Database, DatabaseSettings  # noqa: E402

__all__ = ["MeerkatProcess", "Processes", "RawClient", "fast_nodes", "register", "shared_sqlite"]


async def shared_sqlite(workdir: Path) -> DatabaseSettings:
    settings = DatabaseSettings(driver="sqlite", database=str(workdir / "shared.sqlite3"))
    db = await Database.open(settings, workdir)
    await db.create_schema()
    await db.close()
    return settings


def fast_nodes(group: Processes, *names: str, **kw: Any) -> list[MeerkatProcess]:
    """Nodes whose c2s listener speaks plain text (benchmarks measure routing, not TLS)
    and hashes passwords with few SCRAM iterations (logins are setup, not the subject);
    session mailboxes hold 10000 stanzas (the cleanup benchmark's watcher has 1000 contacts)."""
    nodes = []
    for name in names:
        node = group.new(name, **kw)
        path = node.workdir / "meerkat.toml"
        text = path.read_text().replace('shaper = "none"\n', 'shaper = "none"\ntls.mode = "none"\n')
        text = text.replace(
            "\n[[listen.http]]", "\n[auth.password]\nscram_iterations = 4096\n\n[[listen.http]]", 1
        )
        # One client with 1000 contacts gets their presences in bursts: room for them.
        text = text.replace("workers = ", "max_fsm_queue = 10000\nworkers = ", 1)
        path.write_text(text)
        nodes.append(node)
    return nodes


async def register(node: MeerkatProcess, users: list[str]) -> None:
    for i in range(0, len(users), 50):
        fields = " ".join(
            f'u{j}: registerUser(username: "{u}", domain: "localhost", '
            f'password: "secret") {{ jid }}'
            for j, u in enumerate(users[i : i + 50])
        )
        await node.graphql(f"mutation {{ account {{ {fields} }} }}")


async def login(node: MeerkatProcess, user: str, resource: str = "r") -> RawClient:
    client = await RawClient.connect(node.c2s)
    await client.login(user, resource=resource, tls="none")
    return client


async def start_all(nodes: list[MeerkatProcess]) -> float:
    """Start the processes together; seconds until every banner appeared."""
    start = time.monotonic()
    for n in nodes:
        n.start()
    await asyncio.gather(*(n.wait_started(60) for n in nodes))
    return time.monotonic() - start
