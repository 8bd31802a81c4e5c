"""Stanzas and kicks for sessions on other nodes (DESIGN §3: "the cluster link carries
(sid, stanza) to B").

The router looks a session up in the local copy of the `session` table; when the row names
another node, `SessionForwarding.deliver` queues ``(sid, stanza)`` for that node. The owning
node hands each stanza to the session's mailbox. If the session ended meanwhile, the owner
routes the stanza again from its own, more recent view (another resource, offline storage,
an error reply), like a local delivery that found the session closed. A hop count in the
Acc's scratch bounds the re-routing, so two nodes whose tables disagree cannot bounce a
stanza forever.

Batching: the stanzas queued for a node during one turn of the event loop leave as one
``routes`` message (a list of `codec.encode_routed` payloads), flushed by a callback at the
end of the turn. Under load a c2s session handles a whole read of client data in one turn,
so one link frame carries many stanzas and the per-message costs of the link (framing,
queueing, a write and a read system call, dispatch) are shared; an idle server sends a
batch of one at once. Order is kept: one queue per node, flushed in order, and a kick for a
node first flushes the stanzas queued before it. A batch that cannot leave (the link
closed within the turn) is routed again locally, where the dead node's rows are skipped.

Kicks (resource conflict, `max_user_sessions`, admin) travel as ``kick [sid, condition,
text]``; the owner closes its session, which removes its own row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..cluster import Cluster, ClusterError, NodeEvent, NodeEventKind, NodeId
from ..core.acc import Acc
from ..core.router import Router
from ..core.sessions import SessionManager, SessionRecord
from .codec import decode_routed, encode_routed

log = logging.getLogger(__name__)

ROUTES = "routes"
KICK = "kick"
HOPS = "cluster_hops"
"""Scratch key: how many times this stanza was re-routed after a failed remote delivery."""
MAX_HOPS = 3
MAX_BATCH = 200
"""Stanzas per `routes` message at most (stanzas are at most 64 KiB: far below a frame)."""

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
        self.batches = 0
        self.received = 0
        self.rerouted = 0
        self._queues: dict[str, list[tuple[list[Any], Acc]]] = {}
        self._flush_scheduled = False
        self._up: set[str] = {peer.name for peer in cluster.peers()}
        cluster.subscribe(self._on_node_event)
        sessions.remote_deliver = self.deliver
        sessions.remote_kick = self.kick
        cluster.on_send(ROUTES, self._on_routes)
        cluster.on_send(KICK, self._on_kick)

    def statistics(self) -> dict[str, int]:
        return {
            "forwarded": self.forwarded,
            "batches": self.batches,
            "received": self.received,
            "rerouted": self.rerouted,
        }

    # -- outgoing ------------------------------------------------------------------------------
    def deliver(self, record: SessionRecord, acc: Acc) -> bool:
        """Queue a stanza for the node running `record`; False when that node is not up."""
        node = record.node
        if node not in self._up:
            return False  # down and not cleaned up yet: the caller takes the offline path
        if acc.scratch and acc.scratch.get(HOPS, 0) >= MAX_HOPS:
            log.info("cluster_route_hop_limit sid=%s", record.sid)
            return False
        queue = self._queues.get(node)
        if queue is None:
            queue = self._queues[node] = []
        # Encoded now: a local receiver of the same Acc may change it before the flush.
        queue.append((encode_routed(record.sid, acc), acc))
        if len(queue) >= MAX_BATCH:
            self._flush_node(node)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return True

    def _on_node_event(self, event: NodeEvent) -> None:
        if event.kind is NodeEventKind.UP:
            self._up.add(event.node.name)
        else:
            self._up.discard(event.node.name)
            self._flush_node(event.node.name)  # fails: its stanzas are routed again here

    def flush(self) -> None:
        """Send every queued batch (end of the loop turn)."""
        self._flush_scheduled = False
        for node in list(self._queues):
            self._flush_node(node)

    def _flush_node(self, node: str) -> None:
        batch = self._queues.pop(node, None)
        if not batch:
            return
        try:
            self.cluster.send(node, ROUTES, [payload for payload, _ in batch])
        except ClusterError as exc:  # the link closed within this turn
            log.info("cluster_route_failed node=%s stanzas=%d error=%s", node, len(batch), exc)
            for _, acc in batch:
                self._reroute(acc)
            return
        self.forwarded += len(batch)
        self.batches += 1

    async def kick(self, record: SessionRecord, condition: str, text: str | None = None) -> None:
        self._flush_node(record.node)  # stanzas queued before the kick arrive before it
        try:
            self.cluster.send(record.node, KICK, [record.sid, condition, text])
        except ClusterError as exc:
            # The node is unreachable: when it is declared down its rows are cleaned up.
            log.info("cluster_kick_failed node=%s sid=%s error=%s", record.node, record.sid, exc)

    def _reroute(self, acc: Acc) -> None:
        self.rerouted += 1
        acc.scratch[HOPS] = acc.scratch.get(HOPS, 0) + 1
        self.spawn(self.router.route(acc))

    # -- incoming ------------------------------------------------------------------------------
    def _on_routes(self, peer: NodeId, payload: Any) -> None:
        if not isinstance(payload, list):
            log.warning("cluster_routes_malformed peer=%s", peer.name)
            return
        deliver_local = self.sessions.deliver_local
        for item in payload:
            try:
                sid, acc = decode_routed(item)
            except ValueError as exc:
                log.warning("cluster_route_malformed peer=%s error=%s", peer.name, exc)
                continue
            self.received += 1
            if not deliver_local(sid, acc):
                self._reroute(acc)

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
