"""What stream management needs to resume a session that ran on another node."""

from __future__ import annotations

from typing import Any

from meerkat.core.sessions import SessionHandle
from meerkat.modules.stream_management import SmEntry, StaleH
from meerkat.xmpp.jid import Jid

from .conftest import ClientFactory, ClusterFactory
from .helpers import wait_for


async def test_a_resumption_id_registered_on_one_node_is_taken_over_from_another(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n1, "alice", "phone")
    sid = n1.sessions.user_sessions(Jid("alice", "localhost"))[0].sid
    asked: list[tuple[SessionHandle, str, str]] = []

    async def take_over(handle: SessionHandle, smid: str, new_sid: str) -> Any:
        asked.append((handle, smid, new_sid))
        return {"h": 7, "unacked": ["<message/>"]}

    n1.sessions.takeover_handler = take_over
    jid = Jid("alice", "localhost", "phone")
    await n1.sessions.sm_table.register(SmEntry("smid-1", sid, jid, "node1@localhost"))
    entry = n2.sessions.sm_table.lookup("smid-1")
    assert entry == SmEntry("smid-1", sid, jid, "node1@localhost")
    new_sid = n2.sessions.new_sid(1.0)
    state = await n2.sessions.take_over(sid, "smid-1", new_sid)
    assert state == {"h": 7, "unacked": ["<message/>"]}
    assert [(smid, to) for _, smid, to in asked] == [("smid-1", new_sid)]
    assert asked[0][0] is n1.sessions.local_handle(sid)
    assert await n2.sessions.take_over("1.1@node9@localhost", "smid-1", new_sid) is None
    # A node only hands a session to a sid of the node that asks.
    assert await n2.sessions.take_over(sid, "smid-1", "1.1@node9@localhost") is None


async def test_a_dead_nodes_resumption_ids_are_forgotten_and_stale_h_values_kept(
    make_cluster: ClusterFactory, raw: ClientFactory
) -> None:
    n1, n2 = await make_cluster(2)
    await raw(n2, "bob", "b")
    sid = n2.sessions.user_sessions(Jid("bob", "localhost"))[0].sid
    jid = Jid("bob", "localhost", "b")
    await n2.sessions.sm_table.register(SmEntry("smid-2", sid, jid, "node2@localhost"))
    await n2.sessions.sm_table.put_stale_h("smid-0", StaleH(3, jid.bare, 100.0))
    assert n1.sessions.sm_table.lookup("smid-2") is not None
    assert n2.cluster is not None
    await n2.cluster.stop()
    await wait_for(lambda: n1.sessions.sm_table.lookup("smid-2") is None, what="forgotten")
    assert n1.sessions.sm_table.stale_h("smid-0") == StaleH(3, jid.bare, 100.0)
    assert await n1.sessions.sm_table.prune_stale_h(200.0) == 1
    assert n1.sessions.sm_table.stale_h("smid-0") is None
