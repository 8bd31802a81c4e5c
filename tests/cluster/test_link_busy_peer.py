"""A silent peer whose kernel still acknowledges our heartbeats is busy, not gone.

The peer here is a real TCP connection that finished the handshake (`establish`) and then
never runs: it sends nothing and reads nothing, as a node whose event loop is stuck in a
long turn or waits for a CPU, while its kernel acknowledges every segment it receives.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator

import pytest

from meerkat.cluster import Cluster, ClusterConfig, LinkConfig, NodeEventKind, wire
from meerkat.cluster.clock import SystemClock
from meerkat.cluster.link import establish, split_address

BUSY = LinkConfig(
    heartbeat_interval=0.1,
    heartbeat_misses=3,
    busy_peer_timeout=1.5,
    handshake_timeout=2.0,
    connect_timeout=2.0,
)


@pytest.fixture
async def a() -> AsyncIterator[Cluster]:
    node = Cluster(
        ClusterConfig(node_name="a", secret=b"s", listen_address="127.0.0.1:0", link=BUSY)
    )
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def test_a_silent_peer_whose_kernel_acks_is_dropped_after_the_busy_timeout_only(
    a: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="meerkat.cluster.link")
    events = a.node.events()
    waiting = asyncio.ensure_future(anext(events))  # subscribed before "b" links
    await asyncio.sleep(0)
    host, port = split_address(a.address)
    reader, writer = await asyncio.open_connection(host, port)
    hello = wire.Hello(wire.PROTOCOL_VERSION, "meerkat", "b", "boot-b", os.urandom(16))
    await establish(
        reader,
        writer,
        secret=b"s",
        local=hello,
        outbound=True,
        config=BUSY,
        clock=SystemClock(),
        decide=lambda peer: None,
    )  # the link is up and never run: "b" goes silent
    started = time.monotonic()  # "b" is up on a's side as soon as a accepted
    try:
        down = await asyncio.wait_for(waiting, 5)
        while down.kind is not NodeEventKind.DOWN:
            down = await asyncio.wait_for(anext(events), 5)
        silent = time.monotonic() - started
        assert (down.kind, down.node.name, down.reason) == (
            NodeEventKind.DOWN,
            "b",
            "heartbeat_timeout",
        )
        # Not after 3 intervals (0.3 s) of silence, but once the busy timeout ran out.
        assert BUSY.busy_peer_timeout - 0.2 <= silent <= BUSY.busy_peer_timeout + 1.0
        assert any(
            r.getMessage().startswith("cluster_link_peer_busy peer=b") for r in caplog.records
        )
    finally:
        await events.aclose()
        writer.close()
