"""Fixtures of the XMPP-on-cluster suite.

* `make_cluster(n)`: n Meerkat nodes in this process (each with its own cluster port on
  loopback), sharing one SQLite file for data and discovery, joined before it returns;
  users alice, bob, carol and dave (password "secret") exist. Stopped after the test.
* `raw(node, user, resource)`: a logged-in raw client on that node's plain c2s port.
* Real processes (`meerkat`, `meerkatctl`) live in `procs.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.rawxmpp import RawClient
from meerkat.config import config_from_dict
from meerkat.modules import DEFAULT_MODULES, MODULES
from meerkat.server import Node
from meerkat.xmpp.jid import Jid
from ports import free_port

from .helpers import SECRET, wait_for

USERS = ("alice", "bob", "carol", "dave")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: starts many real processes (runs in CI too; deselect with -m 'not slow')"
    )
    config.addinivalue_line("markers", "netns: needs root and network namespaces")


def node_config(tmp_path: Path, index: int, **overrides: Any) -> dict[str, Any]:
    data = {
        "general": {
            "node_name": f"node{index}@localhost",
            "data_dir": str(tmp_path / f"node{index}"),
            "loglevel": "warning",
        },
        "listen": {
            "c2s": [
                {"port": free_port(), "ip_address": "127.0.0.1", "shaper": "none",
                 "tls": {"mode": "none"}},
            ],
        },
        "outgoing_pools": {
            "rdbms": {
                "default": {
                    "connection": {"driver": "sqlite", "database": str(tmp_path / "shared.db")}
                }
            }
        },
        "internal_databases": {
            "cets": {"ip_address": "127.0.0.1", "port": free_port(), "secret": SECRET}
        },
    }  # fmt: skip
    data.update(overrides)
    return data


ClusterFactory = Callable[..., Awaitable[list[Node]]]


def joined(nodes: list[Node]) -> bool:
    """Every node's session table is replicated to every other running node."""
    names = sorted(n.node for n in nodes)
    for n in nodes:
        assert n.cluster is not None
        if n.cluster.sessions.table.nodes() != names:
            return False
    return True


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[ClusterFactory]:
    nodes: list[Node] = []

    async def make(count: int, users: tuple[str, ...] = USERS, **overrides: Any) -> list[Node]:
        first = len(nodes)
        for i in range(first, first + count):
            config = config_from_dict(
                node_config(tmp_path, i + 1, **overrides), MODULES, DEFAULT_MODULES
            )
            node = Node(config, reraise_hook_errors=True)
            await node.start()
            nodes.append(node)
        if first == 0:
            assert nodes[0].accounts is not None
            for user in users:
                await nodes[0].accounts.register(Jid(user, "localhost"), "secret")
        await wait_for(lambda: joined(nodes), what="all nodes joined")
        return nodes[first:]

    yield make
    for node in nodes:
        await node.stop(timeout=5)


ClientFactory = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def raw() -> AsyncIterator[ClientFactory]:
    clients: list[RawClient] = []

    async def connect(node: Node, user: str, resource: str = "r") -> RawClient:
        client = await RawClient.connect(node.c2s_port())
        await client.login(user, resource=resource, tls="none")
        clients.append(client)
        return client

    yield connect
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
