"""When a node goes down, its sessions go with it (DESIGN §6 "Node loss").

The dead node's rows must leave the `session` table and the session hooks must run for
them, once in the cluster: run on every survivor, contacts would see each unavailable
presence once per survivor. One survivor, the cleaner, does both:

- the cleaner is the `session` table's leader once the dead node is gone
  (`DownInfo.is_leader`): every node of a fully connected segment agrees on it without a
  message; in a netsplit each side has its own leader and cleans up the other side, which
  is what each side's users must see;
- it deletes the rows it holds for the dead node (a replicated delete of exactly those keys,
  so a new incarnation of the node, which can only join later, keeps its own rows), then
  runs SESSION_CLEANUP (mod_last ...) and SM_REMOVE_CONNECTION with ``session=None``
  (mod_presence broadcasts unavailable to the contacts of a session that was available);
- the other survivors delete nothing themselves: had they, their replicated delete could
  reach the cleaner before the cleaner noticed the death, leaving it nothing to clean (and
  no hooks run). Until the cleaner's delete arrives, a stanza for a dead session fails to
  leave (the link is down) and takes the offline path, like a stanza for a closed session;
- a survivor that is not the cleaner remembers the dead node; if the cleaner dies too
  before the rows are gone, the next leader cleans up what is still there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..cluster import DownInfo, NodeId, ReplicatedTable
from ..core.hooks import SESSION_CLEANUP, SM_REMOVE_CONNECTION, HookRegistry
from ..core.sessions import SessionRecord
from .session_table import ReplicatedSessionTable

log = logging.getLogger(__name__)

PENDING_TTL = 300.0
"""Seconds a survivor keeps watching another node's cleanup."""

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class NodeCleanup:
    """Deletes a dead node's sessions and runs their hooks once per segment."""

    def __init__(
        self,
        sessions: ReplicatedSessionTable,
        hooks: HookRegistry,
        spawn: Spawn,
        monotonic: Callable[[], float],
    ) -> None:
        self.sessions = sessions
        self.table: ReplicatedTable = sessions.table
        self.hooks = hooks
        self.spawn = spawn
        self.monotonic = monotonic
        self.closed = False
        self._pending: dict[str, tuple[NodeId, float]] = {}
        """Dead node name -> (the cleaner we expect, since when)."""
        self.cleaned: list[tuple[str, int]] = []
        """(node, sessions) for each cleanup this node ran (tests, logs)."""
        self.table.on_node_down(self._on_down)

    def close(self) -> None:
        """This node is leaving: the peers it loses are not dead, it is (no cleanup)."""
        self.closed = True

    def _on_down(self, info: DownInfo) -> None:
        if self.closed:
            return
        dead = info.node.name
        now = self.monotonic()
        self._pending = {n: p for n, p in self._pending.items() if now - p[1] <= PENDING_TTL}
        if not info.is_leader:
            cleaner = self.table.leader
            log.info("cluster_node_down_cleanup node=%s cleaner=%s", dead, cleaner.name)
            self._pending[dead] = (cleaner, now)
            return
        self._clean(dead)
        # The cleaner we were waiting for may be the node that just went down.
        for name, (cleaner, _) in list(self._pending.items()):
            if cleaner not in self.table.peers:
                del self._pending[name]
                self._clean(name)

    def _clean(self, dead: str) -> None:
        records = self.sessions.owned_by(dead)
        log.info("cluster_node_down_cleanup node=%s cleaner=self sessions=%d", dead, len(records))
        if not records:
            return
        keys = {r.key for r in records}
        deleted = self.table.delete_where(lambda key, _: key in keys)  # local effect at once
        deleted.add_done_callback(_log_failure)
        self.spawn(self._run_hooks(dead, records))

    async def _run_hooks(self, dead: str, records: list[SessionRecord]) -> None:
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
        self.cleaned.append((dead, len(records)))
        log.info("cluster_node_down_cleanup_done node=%s sessions=%d", dead, len(records))


def _log_failure(fut: asyncio.Future[int]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("cluster_node_cleanup_delete_failed", exc_info=fut.exception())
