"""The session table's deletes are batched per loop turn (clustering/session_table.py):
sessions that end together cost their peers one replicated op, not one each."""

from __future__ import annotations

import asyncio
from typing import Any

from meerkat.cluster import NodeId

from .conftest import ClientFactory, ClusterFactory
from .helpers import wait_for

USERS = tuple(f"u{i}" for i in range(40))


async def test_sessions_ending_together_leave_the_peers_one_delete_op(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    a, b = await make_cluster(2, users=USERS)
    assert a.cluster is not None and b.cluster is not None
    table = a.cluster.sessions.table
    clients = [await raw(a, user) for user in USERS]
    await wait_for(lambda: len(b.cluster.sessions.table) == len(USERS), what="rows on b")
    ops: list[int] = []
    send = table.manager.send

    def counting(peer: NodeId, payload: list[Any]) -> None:
        if payload[0] == "session" and payload[1] == "op":
            ops.append(len(payload[4][1]))
        send(peer, payload)

    table.manager.send = counting  # type: ignore[method-assign]
    for client in clients:
        client.writer.transport.abort()
    await wait_for(lambda: len(b.cluster.sessions.table) == 0, what="rows gone on b")
    await wait_for(lambda: a.sessions.local_count() == 0, what="sessions gone on a")
    await asyncio.sleep(0.05)
    assert sum(ops) == len(USERS)
    assert len(ops) <= 4  # one per loop turn in which sessions ended, not one per session
