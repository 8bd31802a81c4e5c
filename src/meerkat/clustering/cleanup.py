"""When a node goes down, its sessions go with it (DESIGN §6 "Node loss").

Every survivor deletes the dead node's rows from the `session` table the moment it sees
the node down (`ReplicatedTable.delete_where` applies locally at once, so routing on this
node stops using them; the replicated delete is idempotent, so N survivors deleting the
same rows is harmless). The session hooks, though, must run once in the cluster, not once
per survivor, or contacts would see every unavailable presence N times:

- the cleaner is the `session` table's leader once the dead node is gone (`DownInfo.is_leader`);
  every node of a fully connected segment agrees on it without messages; in a netsplit each
  side has its own leader and cleans up the other side, which is what each side's users must
  see;
- it runs SESSION_CLEANUP (mod_last ...) and then SM_REMOVE_CONNECTION with ``session=None``
  (mod_presence broadcasts unavailable to the contacts of a session that was available),
  then tells its peers ``cleanup_done``;
- the other survivors keep the rows they deleted, with the node expected to clean, until
  that ``cleanup_done`` arrives; if the expected cleaner goes down first, whoever is leader
  then runs the hooks for those rows too (two nodes dying at once, the leader among them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..cluster import Cluster, ClusterError, DownInfo, NodeId, ReplicatedTable
from ..core.hooks import SESSION_CLEANUP, SM_REMOVE_CONNECTION, HookRegistry
from ..core.sessions import SessionRecord
from .session_table import ReplicatedSessionTable, owner

log = logging.getLogger(__name__)

DONE = "cleanup_done"
PENDING_TTL = 300.0
"""Seconds a survivor remembers rows another node is expected to clean up."""

Spawn = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(slots=True)
class _Pending:
    cleaner: NodeId
    records: list[SessionRecord]
    since: float


class NodeCleanup:
    """Deletes a dead node's sessions and runs their hooks once per segment."""

    def __init__(
        self,
        cluster: Cluster,
        sessions: ReplicatedSessionTable,
        hooks: HookRegistry,
        spawn: Spawn,
        monotonic: Callable[[], float],
    ) -> None:
        self.cluster = cluster
        self.sessions = sessions
        self.table: ReplicatedTable = sessions.table
        self.hooks = hooks
        self.spawn = spawn
        self.monotonic = monotonic
        self._pending: dict[NodeId, _Pending] = {}
        self._done: dict[NodeId, float] = {}  # cleanups a peer finished before we saw the down
        self.closed = False
        self.cleaned: list[tuple[str, int]] = []
        """(node, sessions) for each cleanup this node ran the hooks for (tests, logs)."""
        self.table.on_node_down(self._on_down)
        cluster.on_send(DONE, self._on_done)

    def close(self) -> None:
        """This node is leaving: the peers it loses are not dead, it is (no cleanup)."""
        self.closed = True

    def _on_down(self, info: DownInfo) -> None:
        if self.closed:
            return
        dead = info.node.name
        records = self.sessions.owned_by(dead)
        deleted = self.table.delete_where(lambda _, value: owner(value) == dead)
        deleted.add_done_callback(_log_failure)
        log.info(
            "cluster_node_cleanup node=%s sessions=%d cleaner=%s",
            dead,
            len(records),
            "self" if info.is_leader else self.table.leader.name,
        )
        now = self.monotonic()
        for node, pending in list(self._pending.items()):
            if now - pending.since > PENDING_TTL:
                del self._pending[node]
        self._done = {n: t for n, t in self._done.items() if now - t <= PENDING_TTL}
        if not info.is_leader:
            if records and self._done.pop(info.node, None) is None:
                self._pending[info.node] = _Pending(self.table.leader, records, now)
            return
        self._run(info.node, records)
        # The cleaner we were waiting for may be the node that just went down.
        for node, pending in list(self._pending.items()):
            if pending.cleaner not in self.table.peers:
                del self._pending[node]
                self._run(node, pending.records)

    def _run(self, node: NodeId, records: list[SessionRecord]) -> None:
        self.spawn(self._run_hooks(node, records))

    async def _run_hooks(self, node: NodeId, records: list[SessionRecord]) -> None:
        for record in records:
            params: dict[str, Any] = {
                "session": None,
                "jid": record.jid,
                "sid": record.sid,
                "node": record.node,
                "reason": "node_down",
                "status": "",
                "was_available": record.available,
            }
            host = record.jid.domain
            await self.hooks.run(SESSION_CLEANUP, host, None, params)
            await self.hooks.run(SM_REMOVE_CONNECTION, host, None, params)
            await asyncio.sleep(0)  # a big node's cleanup must not starve the loop
        self.cleaned.append((node.name, len(records)))
        log.info("cluster_node_cleanup_done node=%s sessions=%d", node.name, len(records))
        for peer in self.table.peers:
            with contextlib.suppress(ClusterError):  # gone too: it no longer waits for us
                self.cluster.send(peer, DONE, node.to_wire())

    def _on_done(self, peer: NodeId, payload: Any) -> None:
        try:
            node = NodeId.from_wire(payload)
        except (TypeError, ValueError):
            log.warning("cluster_cleanup_done_malformed peer=%s", peer.name)
            return
        if self._pending.pop(node, None) is None:
            self._done[node] = self.monotonic()


def _log_failure(fut: asyncio.Future[int]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("cluster_node_cleanup_delete_failed", exc_info=fut.exception())
