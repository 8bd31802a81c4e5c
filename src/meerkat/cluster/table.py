"""ReplicatedTable: the CETS table. A full copy on each node, local reads, replicated writes.

Semantics follow esl/cets 0.2 (see docs reference §1):
- a write is applied locally, then sent to every peer in the table's segment; it
  returns when every peer acked or was declared down (never hangs on a partition);
- a peer applies a remote op only if it carries the same join ref (join epoch), and
  acks in every case; acks are cumulative ("every op up to req N is applied": the link is
  FIFO and each table numbers its ops in order), one per table and writer per loop turn
  (`TableManager.ack_later`), so a burst of writes costs one ack, not one per op;
- `insert_new` and `insert_serial` run on the leader (the greatest NodeId), retried with
  backoff on `wrong_leader`;
- while paused (a join in progress) local and leader ops wait in a backlog, applied in
  order after the last pause is released, right after `check` messages that make
  half-joined peers drop each other;
- a peer going down unblocks pending writes and runs the `handle_down` callbacks;
  rows are never deleted by the table itself (see `delete_node_rows`).

All state changes happen synchronously on the event loop, so the message handler
keeps the FIFO order of the link; only waiting for acks is asynchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ClusterError, LeaderOpFailed, PeerUnavailable
from .node import NodeId
from .store import Key, LocalStore, Row, check_key

if TYPE_CHECKING:
    from .tables import TableManager

log = logging.getLogger(__name__)

ConflictHandler = Callable[[Row, Row], Row]
"""(local row, remote row) -> the row both sides keep after a join."""

LEADER_RETRY_DELAYS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 5.0)


@dataclass(frozen=True, slots=True)
class DownInfo:
    """Argument of `handle_down` callbacks (CETS: remote_pid, remote_node, table, is_leader)."""

    table: str
    node: NodeId
    reason: str
    is_leader: bool


DownHandler = Callable[[DownInfo], None]


def keep_greater(local: Row, remote: Row) -> Row:
    """A ready-made conflict handler: keep the greater row (deterministic on all nodes)."""
    from .store import sort_key

    lk = (sort_key(local[0]), repr(local[1]))
    rk = (sort_key(remote[0]), repr(remote[1]))
    return local if lk >= rk else remote


def op_to_wire(op: list[Any]) -> list[Any]:
    """A replicated op with its keys as lists.

    The wire keeps tuples apart from lists (`wire`'s extension type), but each tuple costs a
    nested msgpack packer on the sender and a nested unpacker on every receiver: for a
    session-table op that was 60 % of its decoding. A table knows which parts of an op are
    keys, so it sends them as plain arrays and `op_from_wire` makes them tuples again
    (key parts are str, int or bytes: the round trip is exact). Values still travel as they
    are, tuples included.
    """
    kind, arg = op
    if kind == "delete":
        return [kind, [list(key) for key in arg]]
    if kind == "insert_new":
        return [kind, [list(arg[0]), arg[1]]]
    return [kind, [[list(key), value] for key, value in arg]]  # insert, delete_objects


def op_from_wire(op: list[Any]) -> list[Any]:
    """The inverse of `op_to_wire` (a malformed op raises, and the link's handler logs it)."""
    kind, arg = op
    if kind == "delete":
        return [kind, [tuple(key) for key in arg]]
    if kind == "insert_new":
        return [kind, [tuple(arg[0]), arg[1]]]
    return [kind, [(tuple(key), value) for key, value in arg]]


class ReplicatedTable:
    """One table on one node. Create through `TableManager.create_table`."""

    def __init__(
        self,
        manager: TableManager,
        name: str,
        *,
        bag: bool = False,
        conflict_handler: ConflictHandler | None = None,
        handle_wrong_leader: Callable[[NodeId], None] | None = None,
    ) -> None:
        if bag and conflict_handler is not None:
            raise ClusterError("bag_with_conflict_handler")
        self.manager = manager
        self.node = manager.node
        self.name = name
        self.bag = bag
        self.conflict_handler = conflict_handler
        self.handle_wrong_leader = handle_wrong_leader
        self.store = LocalStore(bag)
        self.peers: set[NodeId] = set()
        self.join_ref: str = manager.new_ref()
        self.pauses: dict[str, NodeId] = {}
        self._backlog: list[tuple[bool, Any, asyncio.Future[Any]]] = []
        self._waiters: dict[int, tuple[set[NodeId], asyncio.Future[Any], Any]] = {}
        self._unacked: dict[NodeId, deque[int]] = {}
        """Per peer, the reqs sent to it and not yet acked, in order."""
        self._req_ids = itertools.count(1)
        self.node_down_history: list[tuple[str, str]] = []
        self._down_handlers: list[DownHandler] = []

    def __repr__(self) -> str:
        return f"<ReplicatedTable {self.name} on {self.node.name}>"

    # -- local reads -------------------------------------------------------------

    def get(self, key: Key) -> Any:
        """The value of `key` (set tables), or None."""
        values = self.store.get(key)
        return values[0] if values else None

    def get_all(self, key: Key) -> list[Any]:
        """Every value of `key` (bag tables; a set table gives 0 or 1)."""
        return self.store.get(key)

    def __contains__(self, key: Key) -> bool:
        return key in self.store

    def __len__(self) -> int:
        return len(self.store)

    def items(self) -> Iterator[Row]:
        return self.store.items()

    def match(self, prefix: Key) -> list[Row]:
        """Rows whose key starts with `prefix`, in key order."""
        return self.store.prefix(prefix)

    def select(self, pred: Callable[[Key, Any], bool]) -> list[Row]:
        return self.store.select(pred)

    def dump(self) -> list[Row]:
        return list(self.store.items())

    # -- membership --------------------------------------------------------------

    @property
    def leader(self) -> NodeId:
        return max(self.peers | {self.node.id})

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node.id

    def nodes(self) -> list[str]:
        """Node names holding this table in our segment, self included, sorted."""
        return sorted({p.name for p in self.peers} | {self.node.name})

    def info(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "size": len(self.store),
            "memory": self.store.memory(),
            "nodes": self.nodes(),
            "other_servers": sorted(self.peers),
            "leader": self.leader,
            "join_ref": self.join_ref,
            "pause_monitors": sorted(self.pauses),
            "node_down_history": list(self.node_down_history),
        }

    def on_node_down(self, handler: DownHandler) -> None:
        """Run `handler(DownInfo)` when a peer of this table goes down (CETS handle_down)."""
        self._down_handlers.append(handler)

    # -- writes ------------------------------------------------------------------

    async def insert(self, key: Key, value: Any) -> None:
        await self._local_op(["insert", [[check_key(key), value]]])

    async def insert_many(self, rows: Iterable[Row]) -> None:
        await self._local_op(["insert", [[check_key(k), v] for k, v in rows]])

    async def delete(self, key: Key) -> None:
        await self._local_op(["delete", [check_key(key)]])

    async def delete_many(self, keys: Iterable[Key]) -> None:
        await self._local_op(["delete", [check_key(k) for k in keys]])

    async def delete_object(self, key: Key, value: Any) -> None:
        await self._local_op(["delete_objects", [[check_key(key), value]]])

    async def delete_objects(self, rows: Iterable[Row]) -> None:
        await self._local_op(["delete_objects", [[check_key(k), v] for k, v in rows]])

    def write_nowait(
        self, inserts: Iterable[Row] = (), deletes: Iterable[Key] = ()
    ) -> asyncio.Future[Any]:
        """`insert_many` then `delete_many`, applied locally and sent to the peers before
        returning (no task needed: for batched background writes); the future resolves
        when every peer acked or went down."""
        rows = [[check_key(k), v] for k, v in inserts]
        keys = [check_key(k) for k in deletes]
        last: asyncio.Future[Any] | None = None
        if rows:
            last = self._local_op(["insert", rows])
        if keys:
            last = self._local_op(["delete", keys])
        if last is None:
            last = asyncio.get_running_loop().create_future()
            last.set_result(None)
        return last

    async def insert_new(self, key: Key, value: Any) -> bool:
        """Insert if the leader has no row with `key`; True when inserted."""
        return bool(await self._leader_call(["insert_new", [check_key(key), value]]))

    async def insert_serial(self, key: Key, value: Any) -> None:
        """Insert serialised by the leader: concurrent writers end consistent."""
        await self._leader_call(["insert", [[check_key(key), value]]])

    def delete_node_rows(self, node_name: str, key_index: int) -> asyncio.Future[int]:
        """Delete (replicated) every row whose key[key_index] == node_name (see delete_where)."""
        return self.delete_where(lambda k, _: len(k) > key_index and k[key_index] == node_name)

    def delete_where(self, pred: Callable[[Key, Any], bool]) -> asyncio.Future[int]:
        """Delete (replicated) every row matching `pred(key, value)`; resolves to the count.

        Applied locally at once: call it from an `on_node_down` handler so a dead node's
        rows are gone before a new incarnation of it can join. Await the result to know
        every peer applied it. Set tables delete by key, bag tables by object.
        """
        rows = self.store.select(pred)
        count: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not rows:
            count.set_result(0)
            return count
        if self.bag:
            done = self._local_op(["delete_objects", [[k, v] for k, v in rows]])
        else:
            done = self._local_op(["delete", [k for k, _ in rows]])

        def finished(f: asyncio.Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                count.set_exception(exc)
            else:
                count.set_result(len(rows))

        done.add_done_callback(finished)
        return count

    async def insert_new_or_lookup(self, key: Key, value: Any) -> tuple[bool, list[Any]]:
        """Like insert_new; on refusal also returns the leader's current values of `key`."""
        inserted, values = await self._leader_call(
            ["insert_new_or_lookup", [check_key(key), value]]
        )
        return bool(inserted), list(values)

    def _local_op(self, op: list[Any]) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.pauses:
            self._backlog.append((False, op, fut))
        else:
            self._apply(op)
            self._replicate(op, fut, None)
        return fut

    def _apply(self, op: list[Any]) -> Any:
        kind, arg = op
        s = self.store
        if kind == "insert":
            for key, value in arg:
                s.insert(key, value)
        elif kind == "delete":
            for key in arg:
                s.delete(key)
        elif kind == "delete_objects":
            for key, value in arg:
                s.delete_object(key, value)
        elif kind == "insert_new":
            return s.insert_new(arg[0], arg[1])
        else:
            raise ClusterError(f"unknown table op {kind!r}")
        return None

    def _replicate(self, op: list[Any], fut: asyncio.Future[Any], result: Any) -> None:
        req = next(self._req_ids)
        sent: set[NodeId] = set()
        wire_op = op_to_wire(op) if self.peers else op
        for peer in sorted(self.peers):
            try:
                self.manager.send(peer, [self.name, "op", self.join_ref, req, wire_op])
            except PeerUnavailable:
                continue  # its down event follows; counts as acked
            sent.add(peer)
            unacked = self._unacked.get(peer)
            if unacked is None:
                unacked = self._unacked[peer] = deque()
            unacked.append(req)
        if sent:
            self._waiters[req] = (sent, fut, result)
        elif not fut.done():
            fut.set_result(result)

    # -- leader ops --------------------------------------------------------------

    async def _leader_call(self, op: list[Any]) -> Any:
        for delay in (*LEADER_RETRY_DELAYS, None):
            leader = self.leader
            if leader == self.node.id:
                reply = await self.leader_op(op)
            else:
                reply = await self.manager.call(leader, [self.name, "leader_op", op], None)
            if reply[0] == "ok":
                return reply[1]
            if self.handle_wrong_leader is not None:
                self.handle_wrong_leader(leader)
            if delay is None:
                break
            await self.node.clock.sleep(delay)
        raise LeaderOpFailed(f"{self.name}: no leader accepted {op[0]}")

    def leader_op(self, op: list[Any]) -> asyncio.Future[Any]:
        """Run a leader op here: ["ok", result] or ["wrong_leader", expected]."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.pauses:
            self._backlog.append((True, op, fut))
        else:
            self._run_leader_op(op, fut)
        return fut

    def _run_leader_op(self, op: list[Any], fut: asyncio.Future[Any]) -> None:
        if not self.is_leader:
            fut.set_result(["wrong_leader", self.leader.to_wire()])
            return
        if op[0] == "insert_new":
            if not self._apply(op):
                fut.set_result(["ok", False])
                return
            self._replicate(op, fut, ["ok", True])
        elif op[0] == "insert_new_or_lookup":
            key, value = op[1]
            if key in self.store:
                fut.set_result(["ok", [False, self.store.get(key)]])
                return
            replicated = ["insert_new", [key, value]]
            self._apply(replicated)
            self._replicate(replicated, fut, ["ok", [True, [value]]])
        else:
            self._apply(op)
            self._replicate(op, fut, ["ok", None])

    # -- remote messages ---------------------------------------------------------

    def remote_op(self, peer: NodeId, join_ref: str, req: int, op: list[Any]) -> None:
        """Apply a peer's op (in `op_to_wire`'s form) and ack it at the end of the turn."""
        if join_ref == self.join_ref:
            self._apply(op_from_wire(op))
        else:
            log.info(
                "cets_remote_op_dropped table=%s from=%s reason=join_ref_mismatch",
                self.name,
                peer.name,
            )
        self.manager.ack_later(peer, self.name, req)

    def ack(self, peer: NodeId, req: int) -> None:
        """`peer` applied every op of ours up to `req` (cumulative)."""
        unacked = self._unacked.get(peer)
        while unacked and unacked[0] <= req:
            done = unacked.popleft()
            waiter = self._waiters.get(done)
            if waiter is not None:
                waiter[0].discard(peer)
                if not waiter[0]:
                    self._finish(done)

    def _finish(self, req: int) -> None:
        _, fut, result = self._waiters.pop(req)
        if not fut.done():
            fut.set_result(result)

    def pause(self, owner: NodeId, ref: str) -> None:
        self.pauses[ref] = owner

    def unpause(self, ref: str) -> None:
        if self.pauses.pop(ref, None) is None:
            raise ClusterError("unknown_pause_monitor")
        if self.pauses:
            return
        for peer in sorted(self.peers):
            with contextlib.suppress(PeerUnavailable):
                self.manager.send(peer, [self.name, "check", self.join_ref])
        backlog, self._backlog = self._backlog, []
        for is_leader_op, op, fut in backlog:
            if self.pauses:  # a backlog op cannot pause, but stay safe
                self._backlog.append((is_leader_op, op, fut))
            elif is_leader_op:
                self._run_leader_op(op, fut)
            else:
                self._apply(op)
                self._replicate(op, fut, None)

    def check_server(self, peer: NodeId, join_ref: str) -> None:
        """A peer finished a join with `join_ref`; drop each other if epochs differ."""
        if join_ref == self.join_ref:
            return
        with contextlib.suppress(PeerUnavailable):
            self.manager.send(peer, [self.name, "check_failed", self.join_ref])
        self.peer_down(peer, "check_server_failed")

    def send_dump(
        self, join_ref: str, pause_ref: str, new_peers: list[NodeId], dump: list[Row]
    ) -> None:
        if pause_ref not in self.pauses:
            log.warning("cets_send_dump_received_when_unpaused table=%s", self.name)
            raise ClusterError("ignored")
        for key, value in dump:
            self.store.insert(key, value)
        for peer in new_peers:
            if peer != self.node.id:
                self.peers.add(peer)
        self.join_ref = join_ref

    def peer_down(self, peer: NodeId, reason: str) -> None:
        """A peer of ours went down: unblock writes, update leader, run callbacks."""
        for ref, owner in list(self.pauses.items()):
            if owner == peer:  # the join coordinator died: release its pause
                log.warning("cets_pause_owner_down table=%s owner=%s", self.name, peer.name)
                self.unpause(ref)
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        self._unacked.pop(peer, None)
        for req, (waiting, _, _) in list(self._waiters.items()):
            waiting.discard(peer)
            if not waiting:
                self._finish(req)
        self.node_down_history.append((peer.name, reason))
        info = DownInfo(self.name, peer, reason, self.is_leader)
        for handler in list(self._down_handlers):
            try:
                handler(info)
            except Exception:
                log.exception("cets_handle_down_failed table=%s", self.name)
