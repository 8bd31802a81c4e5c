"""XEP-0198 resumption on any node: resumption ids in a replicated table, take-over by call.

A client whose connection to node A broke may come back through node B. The stream
management module registers each resumable session's id (smid) in
`SessionManager.resumptions`; clustered, that is the ``stream_management_session`` table,
row ``(smid,) -> [sid, node]``, written by the session's node. To resume, B looks the smid
up locally and calls `SessionManager.take_over(sid, smid)`: for a session on A, the
``sm_takeover`` call runs A's `takeover_handler`, which stops the old session and answers
with its state (plain data). The rows of a dead node are deleted by every survivor.
"""

from __future__ import annotations

import logging
from typing import Any

from ..cluster import Cluster, ClusterError, DownInfo, ReplicatedTable
from ..core.sessions import SessionManager, sid_node

log = logging.getLogger(__name__)

TABLE = "stream_management_session"
TAKEOVER = "sm_takeover"
TAKEOVER_TIMEOUT = 5.0


class ReplicatedResumptionTable:
    """`ResumptionTable` over the replicated ``stream_management_session`` table."""

    def __init__(self, table: ReplicatedTable, node: str) -> None:
        self.table = table
        self.node = node
        table.on_node_down(self._on_down)

    def lookup(self, smid: str) -> str | None:
        value = self.table.get((smid,))
        return str(value[0]) if value else None

    async def register(self, smid: str, sid: str) -> None:
        await self.table.insert((smid,), [sid, self.node])

    async def unregister(self, smid: str) -> None:
        await self.table.delete((smid,))

    def _on_down(self, info: DownInfo) -> None:
        dead = info.node.name
        self.table.delete_where(lambda _, value: value[1] == dead)


class ClusterResumption:
    """Installs the resumption table and the cross-node take-over."""

    def __init__(self, cluster: Cluster, sessions: SessionManager) -> None:
        self.cluster = cluster
        self.sessions = sessions
        sessions.resumptions = ReplicatedResumptionTable(cluster.create_table(TABLE), cluster.name)
        sessions.remote_takeover = self.take_over
        cluster.on_call(TAKEOVER, self._on_takeover)

    async def take_over(self, node: str, sid: str, smid: str) -> Any:
        try:
            return await self.cluster.call(node, TAKEOVER, [sid, smid], TAKEOVER_TIMEOUT)
        except ClusterError as exc:
            log.info("cluster_sm_takeover_failed node=%s sid=%s error=%s", node, sid, exc)
            return None

    async def _on_takeover(self, peer: Any, payload: Any) -> Any:
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and all(isinstance(p, str) for p in payload)
        ):
            raise ClusterError("malformed sm_takeover")
        sid, smid = payload
        if sid_node(sid) != self.cluster.name:
            return None  # not ours: never forward a take-over again
        return await self.sessions.take_over(sid, smid)
