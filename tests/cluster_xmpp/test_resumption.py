"""What stream management needs to resume a session that ran on another node."""

from __future__ import annotations

from typing import Any

from meerkat.core.sessions import SessionHandle
from meerkat.xmpp.jid import Jid

from .conftest import ClientFactory, ClusterFactory
from .helpers import wait_for


async def test_a_resumption_id_registered_on_one_node_is_taken_over_from_another(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n1, "alice", "phone")
    sid = n1.sessions.user_sessions(Jid("alice", "localhost"))[0].sid
    asked: list[tuple[SessionHandle, str]] = []

    async def take_over(handle: SessionHandle, smid: str) -> Any:
        asked.append((handle, smid))
        return {"h": 7, "unacked": ["<message/>"]}

    n1.sessions.takeover_handler = take_over
    await n1.sessions.resumptions.register("smid-1", sid)
    await wait_for(lambda: n2.sessions.resumptions.lookup("smid-1") == sid, what="smid on n2")
    assert await n2.sessions.take_over(sid, "smid-1") == {"h": 7, "unacked": ["<message/>"]}
    assert [smid for _, smid in asked] == ["smid-1"]
    assert asked[0][0] is n1.sessions.local_handle(sid)
    assert await n2.sessions.take_over("1.1@node9@localhost", "smid-1") is None


async def test_a_dead_nodes_resumption_ids_are_forgotten(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n2, "bob", "b")
    sid = n2.sessions.user_sessions(Jid("bob", "localhost"))[0].sid
    await n2.sessions.resumptions.register("smid-2", sid)
    await wait_for(lambda: n1.sessions.resumptions.lookup("smid-2") == sid, what="smid on n1")
    assert n2.cluster is not None
    await n2.cluster.stop()
    await wait_for(lambda: n1.sessions.resumptions.lookup("smid-2") is None, what="forgotten")
