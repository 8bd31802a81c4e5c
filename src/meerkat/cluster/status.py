"""`cets systemInfo` and `cets tableInfo`, with MongooseIM's field names and meanings.

availableNodes: online nodes (self included) running discovery. joinedNodes: self plus
every available remote node whose table -> nodes map, restricted to our table names,
equals ours. Unknown/missing tables and conflicts compare our map with each available
remote node's (reference §1.9, esl/cets cets_status.erl).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ClusterError

if TYPE_CHECKING:
    from .facade import Cluster


async def _remote_status(cluster: Cluster, timeout: float) -> dict[str, dict[str, Any]]:
    out = {}
    for peer in cluster.node.peers():
        try:
            out[peer.name] = await cluster.node.call(peer, "cets_mesh", "status", timeout)
        except ClusterError:
            continue  # went away meanwhile: not online
    return out


async def system_info(cluster: Cluster, timeout: float = 5.0) -> dict[str, Any]:
    me = cluster.node.name
    disco = cluster.discovery
    local: dict[str, list[str]] = cluster.tables.table_nodes()
    remote = await _remote_status(cluster, timeout)
    available = {n: st for n, st in remote.items() if st.get("disco")}
    discovered = disco.discovered_names() if disco is not None else []
    unavailable = sorted(disco.state.unavailable & set(discovered)) if disco is not None else []
    joined = [me] if cluster.tables.discovery_running else []
    unknown_tables: set[str] = set()
    nodes_with_unknown: set[str] = set()
    missing_tables: set[str] = set()
    nodes_with_missing: set[str] = set()
    conflict_tables: set[str] = set()
    conflict_nodes: set[str] = set()
    for name, st in available.items():
        theirs: dict[str, list[str]] = {t: list(n) for t, n in st.get("tables", {}).items()}
        if {t: theirs[t] for t in local if t in theirs} == local:
            joined.append(name)
        unknown = set(theirs) - set(local)
        if unknown:
            unknown_tables |= unknown
            nodes_with_unknown.add(name)
        missing = set(local) - set(theirs)
        if missing:
            missing_tables |= missing
            nodes_with_missing.add(name)
        for table, nodes in local.items():
            if table in theirs and sorted(theirs[table]) != nodes:
                conflict_tables.add(table)
                conflict_nodes.add(name)
    available_nodes = sorted(available) + ([me] if cluster.tables.discovery_running else [])
    return {
        "availableNodes": sorted(available_nodes),
        "unavailableNodes": unavailable,
        "joinedNodes": sorted(joined),
        "discoveredNodes": discovered,
        "discoveryWorks": bool(disco is not None and disco.state.last_ok),
        "remoteNodesWithoutDisco": sorted(
            n for n, st in remote.items() if not st.get("disco") and n in discovered
        ),
        "remoteUnknownTables": sorted(unknown_tables),
        "remoteNodesWithUnknownTables": sorted(nodes_with_unknown),
        "remoteNodesWithMissingTables": sorted(nodes_with_missing),
        "remoteMissingTables": sorted(missing_tables),
        "conflictNodes": sorted(conflict_nodes),
        "conflictTables": sorted(conflict_tables),
    }


def table_info(cluster: Cluster) -> list[dict[str, Any]]:
    """[{tableName, size, nodes, memory}] in table name order; memory in bytes (estimate)."""
    out = []
    for name, table in sorted(cluster.tables.tables.items()):
        out.append(
            {
                "tableName": name,
                "size": len(table),
                "nodes": table.nodes(),
                "memory": table.store.memory(),
            }
        )
    return out
