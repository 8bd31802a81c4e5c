"""XEP-0198 resumption on any node: a replicated `SmTable` and session take-over by call.

A client whose connection to node A broke may come back through node B. Clustered, the
stream management module's `SmTable` is `ReplicatedSmTable`, offered to it as
`SessionManager.sm_table`, over the ``stream_management_session`` table:

    ("id", smid)    -> [sid, full jid, node]     a resumable session, written by its node
    ("stale", smid) -> [h, bare jid, at]         the h of a session that ended unresumed

Reads are local, so B finds A's entry at once. To resume, B calls
`SessionManager.take_over(sid, smid, new_sid)`: for a session on A, the ``sm_takeover``
call ``[sid, smid, new_sid]`` runs A's `takeover_handler` (the stream management module's
`RemoteResumption.hand_off`), which stops the old session, forwards what still arrives for
it to B's new sid and answers with its state (plain data). The call is bounded
(`TAKEOVER_TIMEOUT`, longer than the old node's own wait): an unreachable, slow or dead A
means None, and the client gets ``<failed><item-not-found/>``, never a hang.

An ``id`` row is written by the node running the session; after a resumption on B, B
overwrites it with its own sid and node. Rows of a dead node's sessions are deleted by
every survivor (`remove_node`); a stale h row has no owner to wait for, any node may write
or prune it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..cluster import Cluster, ClusterError, DownInfo, NodeId, ReplicatedTable
from ..core.sessions import SessionManager, sid_node
from ..modules.stream_management.table import SmEntry, StaleH
from ..xmpp.jid import Jid, JidError

log = logging.getLogger(__name__)

TABLE = "stream_management_session"
TAKEOVER = "sm_takeover"
TAKEOVER_TIMEOUT = 10.0
"""Seconds a resuming node waits for the old one: its session may take
`stream_management.remote.HAND_OFF_TIMEOUT` to get to the request, and deleting its row
waits for every peer's ack (a dying peer: until its link misses 3 heartbeats)."""


class ReplicatedSmTable:
    """`meerkat.modules.stream_management.SmTable` over a replicated table."""

    def __init__(self, table: ReplicatedTable) -> None:
        self.table = table
        table.on_node_down(self._on_down)

    def lookup(self, smid: str) -> SmEntry | None:
        value = self.table.get(("id", smid))
        if value is None:
            return None
        sid, jid, node = value
        try:
            return SmEntry(smid, str(sid), Jid.parse(str(jid)), str(node))
        except JidError:
            return None

    async def register(self, entry: SmEntry) -> None:
        await self.table.insert(("id", entry.smid), [entry.sid, str(entry.jid), entry.node])

    async def unregister(self, smid: str) -> None:
        await self.table.delete(("id", smid))

    def stale_h(self, smid: str) -> StaleH | None:
        value = self.table.get(("stale", smid))
        if value is None:
            return None
        h, owner, at = value
        try:
            return StaleH(int(h), Jid.parse(str(owner)), float(at))
        except JidError:
            return None

    async def put_stale_h(self, smid: str, stale: StaleH) -> None:
        await self.table.insert(("stale", smid), [stale.h, str(stale.owner), stale.at])

    async def prune_stale_h(self, older_than: float) -> int:
        return await self.table.delete_where(
            lambda key, value: key[0] == "stale" and value[2] < older_than
        )

    async def remove_node(self, node: str) -> None:
        await self.table.delete_where(lambda key, value: key[0] == "id" and value[2] == node)

    def __len__(self) -> int:
        return len(self.table.match(("id",)))

    def _on_down(self, info: DownInfo) -> None:
        dead = info.node.name
        # Local effect at once (see ReplicatedTable.delete_where); idempotent on every node.
        self.table.delete_where(lambda key, value: key[0] == "id" and value[2] == dead)


class ClusterResumption:
    """Installs the replicated SM table and the cross-node take-over."""

    def __init__(self, cluster: Cluster, sessions: SessionManager) -> None:
        self.cluster = cluster
        self.sessions = sessions
        self.table = ReplicatedSmTable(cluster.create_table(TABLE))
        sessions.sm_table = self.table
        sessions.remote_takeover = self.take_over
        cluster.on_call(TAKEOVER, self._on_takeover)

    async def take_over(self, node: str, sid: str, smid: str, new_sid: str) -> Any:
        try:
            return await self.cluster.call(node, TAKEOVER, [sid, smid, new_sid], TAKEOVER_TIMEOUT)
        except ClusterError as exc:
            log.info("cluster_sm_takeover_failed node=%s sid=%s error=%s", node, sid, exc)
            return None

    async def _on_takeover(self, peer: NodeId, payload: Any) -> Any:
        if not (
            isinstance(payload, list)
            and len(payload) == 3
            and all(isinstance(p, str) for p in payload)
        ):
            raise ClusterError("malformed sm_takeover")
        sid, smid, new_sid = payload
        if sid_node(sid) != self.cluster.name or sid_node(new_sid) != peer.name:
            return None  # not ours (never forward a take-over again), or not theirs
        return await self.sessions.take_over(sid, smid, new_sid)
