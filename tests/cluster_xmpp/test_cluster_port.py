"""The cluster port of a real `meerkat` process refuses strangers and keeps serving;
eight nodes started at the same moment all end in one cluster."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.rawxmpp import RawClient
from meerkat.cluster import Cluster, ClusterConfig, PeerUnavailable
from meerkat.cluster.link import split_address
from meerkat.db import Database, DatabaseSettings

from .helpers import SECRET
from .procs import MeerkatProcess, Processes


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Processes]:
    settings = DatabaseSettings(driver="sqlite", database=str(tmp_path / "shared.sqlite3"))
    db = await Database.open(settings, tmp_path)
    await db.create_schema()
    await db.close()
    procs = Processes(tmp_path, settings)
    try:
        yield procs
    finally:
        procs.close()


def cluster_address(node: MeerkatProcess) -> str:
    found = re.search(r"cluster_started node=\S+ address=(\S+)", node.output())
    assert found, node.output()
    return found.group(1)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    async def drain() -> None:
        while await reader.read(65536):
            pass

    try:
        await asyncio.wait_for(drain(), within)
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        pass
    return True


async def stranger(secret: bytes) -> Cluster:
    cluster = Cluster(
        ClusterConfig(
            node_name="stranger@localhost",
            secret=secret,
            listen_address="127.0.0.1:0",
            cluster_name="meerkat",
        )
    )
    await cluster.start()
    return cluster


async def test_a_real_node_refuses_a_wrong_secret_garbage_and_a_silent_connection(
    group: Processes,
) -> None:
    (node,) = await group.start("node1@localhost")
    host, port = split_address(cluster_address(node))
    silent_reader, silent_writer = await asyncio.open_connection(host, port)
    garbage_reader, garbage_writer = await asyncio.open_connection(host, port)
    garbage_writer.write(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1GET / HTTP/1.1\r\n\r\n")
    wrong = await stranger(b"not-the-cluster-secret")
    right = await stranger(SECRET.encode())
    try:
        with pytest.raises(PeerUnavailable):
            await wrong.node.connect(f"{host}:{port}")
        assert await closed_by_server(garbage_reader, 3.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await closed_by_server(silent_reader, 10.0)  # the handshake deadline (5 s)
        assert loop.time() - start > 1.0
        info = await node.system_info()
        assert "stranger@localhost" not in info["availableNodes"]
        # The node still serves clients, and a peer with the right secret still links.
        client = await RawClient.connect(node.c2s)
        await node.graphql(
            'mutation { account { registerUser(username: "alice", domain: "localhost", '
            'password: "secret") { jid } } }'
        )
        await client.login("alice")
        await client.close()
        peer = await right.node.connect(f"{host}:{port}")
        assert peer.name == "node1@localhost"
    finally:
        for writer in (silent_writer, garbage_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        await wrong.stop()
        await right.stop()
    log = node.output()
    assert "cluster_link_refused" in log or "cluster_link_bad_frame" in log


@pytest.mark.slow
async def test_eight_nodes_started_at_the_same_time_all_end_joined(group: Processes) -> None:
    names = [f"node{i}@localhost" for i in range(1, 9)]
    nodes = await group.start(*names)
    await group.wait_clean(nodes, timeout=60)
