"""A network cut between two groups of nodes (network namespaces, a veth pair taken down).

Nodes 1 and 2 live in namespace A, node 3 in namespace B; discovery is a shared SQLite
file (the file system is shared, the network is not). During the cut each side serves its
own users; after it heals, discovery joins the sides again and systemInfo is clean.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from e2e.rawxmpp import RawClient
from meerkat.db import Database, DatabaseSettings

from .helpers import body_of_next_message, message, presence, wait_for
from .netns import NetnsUnavailable, Network, socket_in
from .procs import MeerkatProcess, Processes, clean

pytestmark = [pytest.mark.slow, pytest.mark.netns]


@pytest.fixture
def network() -> Iterator[Network]:
    try:
        net = Network.create()
    except NetnsUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"network namespaces unavailable ({exc}); CI=true requires them")
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        yield net
    finally:
        net.remove()


@pytest.fixture
async def group(tmp_path: Path, network: Network) -> AsyncIterator[Processes]:
    settings = DatabaseSettings(driver="sqlite", database=str(tmp_path / "shared.sqlite3"))
    db = await Database.open(settings, tmp_path)
    await db.create_schema()
    await db.close()
    procs = Processes(tmp_path, settings)
    try:
        yield procs
    finally:
        procs.close()  # before the namespaces go


async def client_in(node: MeerkatProcess, user: str, resource: str) -> RawClient:
    assert node.netns is not None
    sock = await socket_in(node.netns, node.ip, node.c2s)
    reader, writer = await asyncio.open_connection(sock=sock)
    client = RawClient(reader, writer)
    await client.login(user, resource=resource)
    return client


async def wait_all(nodes: list[MeerkatProcess], names: list[str], what: str) -> None:
    async def check() -> bool:
        infos = [await n.system_info() for n in nodes]
        return all(sorted(i["joinedNodes"]) == sorted(names) for i in infos)

    await wait_for(check, 40, what=what, interval=0.5)


async def test_both_sides_of_a_cut_keep_serving_and_merge_after_it_heals(
    group: Processes, network: Network
) -> None:
    n1 = group.new("node1@a", ip=network.addr_a, netns=network.a)
    n2 = group.new("node2@a", ip=network.addr_a, netns=network.a)
    n3 = group.new("node3@b", ip=network.addr_b, netns=network.b)
    nodes = [n1, n2, n3]
    names = [n.name for n in nodes]
    for n in nodes:
        n.start()
    await asyncio.gather(*(n.wait_started() for n in nodes))
    await wait_all(nodes, names, "the three nodes to join")
    for user in ("alice", "bob", "carol", "dave"):
        code, out = await n1.ctl(
            "account", "registerUser", "--username", user, "--domain", "localhost",
            "--password", "secret",
        )  # fmt: skip
        assert code == 0, out
    alice = await client_in(n1, "alice", "a")
    carol = await client_in(n2, "carol", "c")
    bob = await client_in(n3, "bob", "b")
    dave = await client_in(n3, "dave", "d")
    for c in (alice, carol, bob, dave):
        c.send(presence())
    alice.send(message("bob@localhost/b", "before the cut"))
    assert await body_of_next_message(bob) == "before the cut"

    network.cut()
    await wait_all([n1, n2], ["node1@a", "node2@a"], "side A to see B gone")
    await wait_all([n3], ["node3@b"], "side B to see A gone")
    alice.send(message("carol@localhost/c", "inside A"))
    assert await body_of_next_message(carol) == "inside A"
    bob.send(message("dave@localhost/d", "inside B"))
    assert await body_of_next_message(dave) == "inside B"
    info = await n3.system_info()
    assert info["unavailableNodes"] == ["node1@a", "node2@a"]

    network.heal()
    await wait_all(nodes, names, "the sides to merge")
    for n in nodes:
        info = await n.system_info()
        assert clean(info, names), info
    alice.send(message("bob@localhost/b", "after the heal"))
    assert await body_of_next_message(bob) == "after the heal"
    dave.send(message("carol@localhost/c", "across again"))
    assert await body_of_next_message(carol) == "across again"
    for c in (alice, carol, bob, dave):
        await c.close()
