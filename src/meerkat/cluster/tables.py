"""TableManager: the replicated tables of one node and their wire protocol (channel `cets`).

One-way messages `[table, kind, ...]`: op, ack (cumulative: every op up to that req),
check, check_failed. Acks wait for the end of the loop turn (`ack_later`), so the ops a
peer sent in one burst are acked by one message.
Calls `[table, kind, ...]`: leader_op, info, pause, unpause, ping, ping_all, dump, send_dump.
Mesh calls (channel `cets_mesh`): connected (our peers), tables (table -> nodes), used by
joins and by `cets systemInfo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ClusterError, PeerUnavailable
from .lock import ClusterLock
from .node import ClusterNode, NodeEvent, NodeEventKind, NodeId
from .table import ConflictHandler, ReplicatedTable

log = logging.getLogger(__name__)

CHANNEL = "cets"
MESH = "cets_mesh"

Checkpoint = Callable[[str], Awaitable[None]]


class TableManager:
    """Creates tables, dispatches their messages, answers mesh queries, runs joins."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.tables: dict[str, ReplicatedTable] = {}
        self.lock = ClusterLock(node)
        self._refs = itertools.count(1)
        self.discovery_running = False
        self._acks: dict[NodeId, dict[str, int]] = {}
        """Acks to send at the end of this loop turn: peer -> table -> highest req."""
        node.on_send(CHANNEL, self._on_send)
        node.on_call(CHANNEL, self._on_call)
        node.on_call(MESH, self._on_mesh)
        node.subscribe(self._on_event)

    def new_ref(self) -> str:
        """A cluster-unique reference (join refs, pause refs)."""
        return f"{self.node.name}/{self.node.id.boot_id}/{next(self._refs)}"

    def create_table(
        self,
        name: str,
        *,
        bag: bool = False,
        conflict_handler: ConflictHandler | None = None,
        handle_wrong_leader: Callable[[NodeId], None] | None = None,
    ) -> ReplicatedTable:
        if name in self.tables:
            raise ClusterError(f"table {name} already exists")
        table = ReplicatedTable(
            self,
            name,
            bag=bag,
            conflict_handler=conflict_handler,
            handle_wrong_leader=handle_wrong_leader,
        )
        self.tables[name] = table
        return table

    def delete_table(self, name: str) -> None:
        """Forget a table; its peers drop us from their copy's segment."""
        table = self.tables.pop(name, None)
        if table is None:
            return
        for peer in sorted(table.peers):
            with contextlib.suppress(PeerUnavailable):
                self.send(peer, [name, "check_failed", ""])

    def table(self, name: str) -> ReplicatedTable:
        return self.tables[name]

    def send(self, peer: NodeId, payload: list[Any]) -> None:
        self.node.send(peer, CHANNEL, payload)

    def ack_later(self, peer: NodeId, table: str, req: int) -> None:
        """Ack `peer`'s ops on `table` up to `req` at the end of this loop turn."""
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._send_acks)
        self._acks.setdefault(peer, {})[table] = req  # a peer's reqs arrive in order

    def _send_acks(self) -> None:
        acks, self._acks = self._acks, {}
        for peer, tables in acks.items():
            for name, req in tables.items():
                with contextlib.suppress(PeerUnavailable):
                    self.send(peer, [name, "ack", req])

    async def call(self, peer: NodeId, payload: list[Any], timeout: float | None = -1.0) -> Any:
        return await self.node.call(peer, CHANNEL, payload, timeout)

    def table_nodes(self) -> dict[str, list[str]]:
        """table name -> sorted node names of its segment (self included)."""
        return {name: t.nodes() for name, t in sorted(self.tables.items())}

    # -- dispatch ----------------------------------------------------------------

    def _on_event(self, event: NodeEvent) -> None:
        if event.kind is NodeEventKind.DOWN:
            for table in list(self.tables.values()):
                table.peer_down(event.node, event.reason)

    def _on_send(self, peer: NodeId, payload: Any) -> None:
        name, kind, *args = payload
        table = self.tables.get(name)
        if table is None:
            if kind == "op":  # deleted table: ack so the writer does not wait for us
                self.ack_later(peer, name, args[1])
            return
        if kind == "op":
            table.remote_op(peer, args[0], args[1], args[2])
        elif kind == "ack":
            table.ack(peer, args[0])
        elif kind == "check":
            table.check_server(peer, args[0])
        elif kind == "check_failed":
            table.peer_down(peer, "check_server_failed")
        else:
            log.warning("cets_unknown_message kind=%r from=%s", kind, peer.name)

    def _on_call(self, peer: NodeId, payload: Any) -> Any:
        name, kind, *args = payload
        table = self.tables.get(name)
        if table is None:
            raise ClusterError("unknown_table")
        if kind == "leader_op":
            return table.leader_op(args[0])
        if kind == "info":
            return {
                "node": table.node.id.to_wire(),
                "peers": [p.to_wire() for p in sorted(table.peers)],
                "join_ref": table.join_ref,
            }
        if kind == "pause":
            table.pause(peer, args[0])
            return True
        if kind == "unpause":
            table.unpause(args[0])
            return True
        if kind == "ping":
            return "pong"
        if kind == "ping_all":
            return self._ping_all(table)
        if kind == "dump":
            return [[k, v] for k, v in table.dump()]
        if kind == "send_dump":
            join_ref, pause_ref, peers, dump = args
            table.send_dump(
                join_ref,
                pause_ref,
                [NodeId.from_wire(p) for p in peers],
                [(k, v) for k, v in dump],
            )
            return True
        raise ClusterError(f"unknown_call {kind}")

    async def _ping_all(self, table: ReplicatedTable) -> list[str]:
        failed = []
        for peer in sorted(table.peers):
            try:
                await self.call(peer, [table.name, "ping"])
            except ClusterError:
                failed.append(peer.name)
        return failed

    def _on_mesh(self, peer: NodeId, payload: Any) -> Any:
        if payload == "connected":
            return [p.to_wire() for p in self.node.peers()]
        if payload == "status":
            return {"disco": self.discovery_running, "tables": self.table_nodes()}
        raise ClusterError(f"unknown_mesh_call {payload!r}")

    async def join(self, table: str, remote: NodeId, checkpoint: Checkpoint | None = None) -> str:
        """Join our segment of `table` with `remote`'s (cluster-serialised)."""
        from .join import join

        return await join(self, table, remote, checkpoint)
