"""Joining two segments of a replicated table (CETS cets_join), run by one coordinator.

Steps, all under the cluster lock (one join at a time in the whole cluster):
1. read both segments (server + its peers); equal -> nothing to do; overlapping -> error;
2. every node of one segment must be connected to every node of the other, and each
   segment must be fully connected with one join ref (else the CETS check names);
3. pause every server of both segments (a pause dies with its owner, the coordinator);
4. flush in-flight ops (ping_all), take both key-sorted dumps, check again;
5. resolve same-key conflicts with the table's handler (walking both dumps in order);
6. send each side the other side's dump, the new peer list and the new join ref;
7. finally unpause everything: each server then sends `check` with its join ref to its
   peers, so servers that missed their dump (coordinator lost mid-join) drop each other.

`checkpoint(name)` hooks let tests force races between the steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import ClusterError, JoinError
from .node import NodeId
from .store import Row, sort_key
from .table import ConflictHandler

if TYPE_CHECKING:
    from .tables import Checkpoint, TableManager

log = logging.getLogger(__name__)


async def join(
    manager: TableManager, table_name: str, remote: NodeId, checkpoint: Checkpoint | None = None
) -> str:
    """Returns "joined" or "already_joined"; raises JoinError(reason)."""
    node = manager.node
    local = manager.table(table_name)
    if remote == node.id:
        raise JoinError("join_with_the_same_pid")

    async def cp(name: str) -> None:
        if checkpoint is not None:
            await checkpoint(name)

    async def tcall(target: NodeId, kind: str, *args: Any) -> Any:
        try:
            return await manager.call(target, [table_name, kind, *args])
        except ClusterError as exc:
            raise JoinError(f"task_failed {kind} {target.name}: {exc}") from exc

    await cp("before_lock")
    async with manager.lock.hold():
        await cp("locked")
        loc_segment = _segment(await tcall(node.id, "info"))
        rem_segment = _segment(await tcall(remote, "info"))
        if loc_segment == rem_segment:
            return "already_joined"
        if loc_segment & rem_segment:
            raise JoinError("check_do_not_overlap_failed")
        await _check_reachability(manager, loc_segment, rem_segment)
        loc_ref = await _check_fully_connected(tcall, loc_segment)
        rem_ref = await _check_fully_connected(tcall, rem_segment)
        join_ref = manager.new_ref()
        pause_ref = manager.new_ref()
        paused: list[NodeId] = []
        try:
            for server in sorted(loc_segment | rem_segment):
                await tcall(server, "pause", pause_ref)
                paused.append(server)
            await cp("paused")
            for server in sorted(loc_segment | rem_segment):
                failed = await tcall(server, "ping_all")
                if failed:
                    raise JoinError(f"ping_all_failed {server.name}: {failed}")
            loc_dump = _rows(await tcall(node.id, "dump"))
            rem_dump = _rows(await tcall(remote, "dump"))
            if await _check_fully_connected(tcall, loc_segment) != loc_ref:
                raise JoinError("check_same_join_ref_failed")
            if await _check_fully_connected(tcall, rem_segment) != rem_ref:
                raise JoinError("check_same_join_ref_failed")
            if local.conflict_handler is not None:
                loc_dump, rem_dump = resolve_conflicts(loc_dump, rem_dump, local.conflict_handler)
            await cp("before_send_dump")
            await _send_dumps(
                manager, table_name, loc_segment, rem_segment, rem_dump, join_ref, pause_ref, cp
            )
            await _send_dumps(
                manager, table_name, rem_segment, loc_segment, loc_dump, join_ref, pause_ref, cp
            )
            await cp("before_unpause")
        finally:
            for server in paused:
                try:
                    await manager.call(server, [table_name, "unpause", pause_ref])
                except ClusterError as exc:
                    log.info("cets_join_unpause_failed server=%s error=%s", server.name, exc)
    log.info("cets_join_done table=%s local=%s remote=%s", table_name, node.name, remote.name)
    return "joined"


def _segment(info: dict[str, Any]) -> frozenset[NodeId]:
    return frozenset(
        [NodeId.from_wire(info["node"])] + [NodeId.from_wire(p) for p in info["peers"]]
    )


def _rows(dump: list[Any]) -> list[Row]:
    return [(k, v) for k, v in dump]


async def _check_reachability(
    manager: TableManager, seg1: frozenset[NodeId], seg2: frozenset[NodeId]
) -> None:
    for server in sorted(seg1 | seg2):
        other = seg2 if server in seg1 else seg1
        try:
            connected = await manager.node.call(server, "cets_mesh", "connected")
        except ClusterError as exc:
            raise JoinError(f"check_could_reach_each_other_failed {server.name}: {exc}") from exc
        reachable = {NodeId.from_wire(p) for p in connected} | {server}
        if not other <= reachable:
            missing = sorted(n.name for n in other - reachable)
            raise JoinError(f"check_could_reach_each_other_failed {server.name} -> {missing}")


async def _check_fully_connected(tcall: Any, segment: frozenset[NodeId]) -> str:
    refs = set()
    for server in sorted(segment):
        info = await tcall(server, "info")
        if _segment(info) != segment:
            raise JoinError("check_fully_connected_failed")
        refs.add(info["join_ref"])
    if len(refs) != 1:
        raise JoinError("check_same_join_ref_failed")
    return str(refs.pop())


async def _send_dumps(
    manager: TableManager,
    table_name: str,
    receivers: frozenset[NodeId],
    new_peers: frozenset[NodeId],
    dump: list[Row],
    join_ref: str,
    pause_ref: str,
    cp: Any,
) -> None:
    wire_peers = [p.to_wire() for p in sorted(new_peers)]
    wire_dump = [[k, v] for k, v in dump]
    for server in sorted(receivers):
        await cp(f"send_dump:{server.name}")
        try:
            await manager.call(
                server, [table_name, "send_dump", join_ref, pause_ref, wire_peers, wire_dump]
            )
        except ClusterError as exc:  # CETS: errors per server are swallowed
            log.warning(
                "cets_send_dump_failed table=%s server=%s error=%s", table_name, server.name, exc
            )


def resolve_conflicts(
    local: Sequence[Row], remote: Sequence[Row], handler: ConflictHandler
) -> tuple[list[Row], list[Row]]:
    """Walk two key-sorted dumps; identical rows are dropped from both, same-key rows
    become handler(local, remote) on both sides, other rows stay on their side."""
    out_local: list[Row] = []
    out_remote: list[Row] = []
    i = j = 0
    while i < len(local) and j < len(remote):
        lk, rk = sort_key(local[i][0]), sort_key(remote[j][0])
        if lk < rk:
            out_local.append(local[i])
            i += 1
        elif rk < lk:
            out_remote.append(remote[j])
            j += 1
        else:
            if local[i] != remote[j]:
                merged = handler(local[i], remote[j])
                out_local.append(merged)
                out_remote.append(merged)
            i += 1
            j += 1
    out_local.extend(local[i:])
    out_remote.extend(remote[j:])
    return out_local, out_remote
