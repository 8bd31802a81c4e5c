"""Stanzas and kicks for sessions on other nodes (DESIGN §3: "the cluster link carries
(sid, stanza) to B").

The router looks a session up in the local copy of the `session` table; when the row names
another node, `SessionForwarding.deliver` sends ``route [sid, stanza...]`` on that node's
link (FIFO per node pair, so a user's stanzas keep their order). The owning node hands it
to the session's mailbox. If the session ended meanwhile, the owner routes the stanza again
from its own, more recent view (another resource, offline storage, an error reply), like a
local delivery that found the session closed. A hop count in the Acc's scratch bounds the
re-routing, so two nodes whose tables disagree cannot bounce a stanza forever.

Kicks (resource conflict, `max_user_sessions`, admin) travel as ``kick [sid, condition,
text]``; the owner closes its session, which removes its own row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..cluster import Cluster, ClusterError, NodeId
from ..core.acc import Acc
from ..core.router import Router
from ..core.sessions import SessionManager, SessionRecord
from .codec import decode_routed, encode_routed

log = logging.getLogger(__name__)

ROUTE = "route"
KICK = "kick"
HOPS = "cluster_hops"
"""Scratch key: how many times this stanza was re-routed after a failed remote delivery."""
MAX_HOPS = 3

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class SessionForwarding:
    """Installs the session manager's remote hooks and serves the peers' messages."""

    def __init__(
        self, cluster: Cluster, sessions: SessionManager, router: Router, spawn: Spawn
    ) -> None:
        self.cluster = cluster
        self.sessions = sessions
        self.router = router
        self.spawn = spawn
        self.forwarded = 0
        self.received = 0
        self.rerouted = 0
        sessions.remote_deliver = self.deliver
        sessions.remote_kick = self.kick
        cluster.on_send(ROUTE, self._on_route)
        cluster.on_send(KICK, self._on_kick)

    def statistics(self) -> dict[str, int]:
        return {"forwarded": self.forwarded, "received": self.received, "rerouted": self.rerouted}

    # -- outgoing ------------------------------------------------------------------------------
    async def deliver(self, record: SessionRecord, acc: Acc) -> bool:
        """Send a stanza to the node running `record`; False when that node is unreachable."""
        if acc.scratch.get(HOPS, 0) >= MAX_HOPS:
            log.info("cluster_route_hop_limit sid=%s", record.sid)
            return False
        try:
            self.cluster.send(record.node, ROUTE, encode_routed(record.sid, acc))
        except ClusterError as exc:  # PeerUnavailable (down, not yet cleaned) or too large
            log.debug("cluster_route_failed node=%s error=%s", record.node, exc)
            return False
        self.forwarded += 1
        return True

    async def kick(self, record: SessionRecord, condition: str, text: str | None = None) -> None:
        try:
            self.cluster.send(record.node, KICK, [record.sid, condition, text])
        except ClusterError as exc:
            # The node is unreachable: when it is declared down its rows are cleaned up.
            log.info("cluster_kick_failed node=%s sid=%s error=%s", record.node, record.sid, exc)

    # -- incoming ------------------------------------------------------------------------------
    def _on_route(self, peer: NodeId, payload: Any) -> None:
        try:
            sid, acc = decode_routed(payload)
        except ValueError as exc:
            log.warning("cluster_route_malformed peer=%s error=%s", peer.name, exc)
            return
        self.received += 1
        if self.sessions.deliver_local(sid, acc):
            return
        self.rerouted += 1
        acc.scratch[HOPS] = acc.scratch.get(HOPS, 0) + 1
        self.spawn(self.router.route(acc))

    def _on_kick(self, peer: NodeId, payload: Any) -> None:
        if (
            not isinstance(payload, list)
            or len(payload) != 3
            or not isinstance(payload[0], str)
            or not isinstance(payload[1], str)
            or not isinstance(payload[2], (str, type(None)))
        ):
            log.warning("cluster_kick_malformed peer=%s", peer.name)
            return
        sid, condition, text = payload
        if not self.sessions.kick_local(sid, condition, text):
            log.debug("cluster_kick_unknown_session sid=%s", sid)
