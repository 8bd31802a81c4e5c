"""The discovery loop with memory and file backends, netsplits and status (in memory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cluster_harness import Harness, advance, wait_for

from meerkat.cluster import Cluster, DiscoveredNode, FileBackend
from meerkat.cluster.discovery import DiscoveryConfig, parse_node_list


def all_joined(clusters: list[Cluster], table: str) -> bool:
    names = sorted(c.name for c in clusters)
    return all(table in c.tables.tables and c.table(table).nodes() == names for c in clusters)


async def test_two_nodes_with_discovery_join_their_tables(h: Harness) -> None:
    a, b = await h.nodes("a", "b", discovery=True)
    for c in (a, b):
        c.create_table("session")
    await wait_for(lambda: all_joined([a, b], "session"), clock=h.clock, step=0.5)
    await a.table("session").insert(("k",), 1)
    assert b.table("session").get(("k",)) == 1


async def test_eight_nodes_starting_at_once_all_end_joined(h: Harness) -> None:
    names = [f"n{i}" for i in range(8)]
    clusters = [await h.node(n, discovery=True) for n in names]
    for c in clusters:
        c.create_table("session")
        c.create_table("s2s", bag=True)
        await c.table("session").insert((c.name,), c.name)
    await wait_for(
        lambda: all_joined(clusters, "session") and all_joined(clusters, "s2s"),
        clock=h.clock,
        step=0.5,
        timeout=30,
    )
    for c in clusters:
        assert [k for k, _ in c.table("session").items()] == [(n,) for n in names]
    info = await clusters[3].system_info()
    assert info["joinedNodes"] == names and info["availableNodes"] == names


async def test_table_created_after_start_is_joined(h: Harness) -> None:
    a, b = await h.nodes("a", "b", discovery=True)
    await wait_for(lambda: a.node.is_up("b"), clock=h.clock, step=0.5)
    a.create_table("late")
    b.create_table("late")
    await wait_for(lambda: all_joined([a, b], "late"), clock=h.clock, step=0.5)


async def test_failing_backend_is_retried_and_reported(h: Harness) -> None:
    h.registry.failing = True
    (a,) = await h.nodes("a", discovery=True)
    assert a.discovery is not None
    await a.discovery.wait_for_checks(1)
    assert (await a.system_info())["discoveryWorks"] is False
    assert a.discovery.next_interval() == 1.0
    h.registry.failing = False
    await wait_for(
        lambda: a.discovery is not None and a.discovery.state.last_ok is True,
        clock=h.clock,
        step=0.5,
    )
    assert (await a.system_info())["discoveryWorks"] is True


async def test_check_schedule_follows_the_phases(h: Harness) -> None:
    cfg = DiscoveryConfig(
        initial_interval=5,
        initial_phase=300,
        regular_interval=30,
        after_nodedown_interval=7,
        nodedown_window=30,
    )
    a, b = await h.nodes("a", "b", discovery=True, config=cfg)
    assert a.discovery is not None
    await wait_for(lambda: a.node.is_up("b"), clock=h.clock, step=0.5)
    assert a.discovery.next_interval() == 5
    await advance(h.clock, 301)
    assert a.node.is_up("b") and a.discovery.next_interval() == 30
    await h.stop(b)
    await wait_for(lambda: not a.node.is_up("b"))
    assert a.discovery.next_interval() == 7
    await advance(h.clock, 31)
    assert a.discovery.next_interval() == 30


async def test_netsplit_diverges_and_heals_through_discovery(h: Harness) -> None:
    cfg = DiscoveryConfig(initial_interval=1, after_nodedown_interval=1)
    a, b, c = await h.nodes("a", "b", "c", discovery=True, config=cfg)
    for x in (a, b, c):
        x.create_table("t", conflict_handler=lambda loc, rem: max(loc, rem))
    await wait_for(lambda: all_joined([a, b, c], "t"), clock=h.clock, step=0.5)
    h.net.partition([a.address, b.address], [c.address])
    await wait_for(
        lambda: a.table("t").nodes() == ["a", "b"] and c.table("t").nodes() == ["c"],
        clock=h.clock,
        step=0.5,
    )
    await a.table("t").insert(("k",), 1)  # returns although c is unreachable
    await c.table("t").insert(("k",), 2)
    await c.table("t").insert(("only_c",), 3)
    assert (await c.system_info())["unavailableNodes"] == ["a", "b"]
    h.net.heal()
    await wait_for(lambda: all_joined([a, b, c], "t"), clock=h.clock, step=0.5, timeout=10)
    for x in (a, b, c):
        assert x.table("t").dump() == [(("k",), 2), (("only_c",), 3)]


async def test_restarted_node_rejoins_and_survivors_clean_its_rows(h: Harness) -> None:
    a, b = await h.nodes("a", "b", discovery=True)
    for x in (a, b):
        x.create_table("session")
    await wait_for(lambda: all_joined([a, b], "session"), clock=h.clock, step=0.5)
    cleaned: list[asyncio.Future[int]] = []
    a.table("session").on_node_down(
        lambda info: cleaned.append(a.table("session").delete_node_rows(info.node.name, 0))
    )
    await b.table("session").insert(("b", "sid1"), 1)
    await h.stop(b)
    await wait_for(lambda: bool(cleaned))
    assert await cleaned[0] == 1
    b2 = await h.node("b", boot="again", discovery=True)
    b2.create_table("session")
    await wait_for(lambda: all_joined([a, b2], "session"), clock=h.clock, step=0.5)
    assert len(b2.table("session")) == 0


def test_file_node_list_is_split_on_whitespace_and_newlines() -> None:
    assert parse_node_list("a:1\r\n  b=h:2\n\nc:3 ") == [
        DiscoveredNode(None, "a:1"),
        DiscoveredNode("b", "h:2"),
        DiscoveredNode(None, "c:3"),
    ]


async def test_file_backend_reports_missing_file_then_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "nodes.txt"
    backend = FileBackend(path)
    with pytest.raises(OSError):
        await backend.get_nodes()
    path.write_text("127.0.0.1:4370\n127.0.0.1:4371\n")
    assert [n.address for n in await backend.get_nodes()] == ["127.0.0.1:4370", "127.0.0.1:4371"]


async def test_status_reports_unknown_missing_and_conflicting_tables(h: Harness) -> None:
    a, b = await h.nodes("a", "b", discovery=True)
    for x in (a, b):
        x.create_table("shared")
    a.create_table("only_a")
    b.create_table("only_b")
    await wait_for(lambda: all_joined([a, b], "shared"), clock=h.clock, step=0.5)
    info = await a.system_info()
    assert info["remoteUnknownTables"] == ["only_b"]
    assert info["remoteNodesWithUnknownTables"] == ["b"]
    assert info["remoteMissingTables"] == ["only_a"]
    assert info["remoteNodesWithMissingTables"] == ["b"]
    assert info["joinedNodes"] == ["a"]  # b lacks only_a
    assert info["conflictTables"] == [] and info["conflictNodes"] == []
    b.table("shared").peers.clear()  # b now reports a different node list
    info = await a.system_info()
    assert info["conflictTables"] == ["shared"] and info["conflictNodes"] == ["b"]
    assert info["discoveredNodes"] == ["a", "b"] and info["unavailableNodes"] == []
    tables = a.table_info()
    assert [t["tableName"] for t in tables] == ["only_a", "shared"]
    assert tables[1]["nodes"] == ["a", "b"] and tables[1]["size"] == 0


async def test_status_lists_connected_nodes_without_discovery(h: Harness) -> None:
    a = await h.node("a", discovery=True)
    b = await h.node("b")  # no discovery process, but registered in the backend
    h.registry.nodes["b"] = b.address
    await wait_for(lambda: a.node.is_up("b"), clock=h.clock, step=0.5)
    info = await a.system_info()
    assert info["availableNodes"] == ["a"]
    assert info["remoteNodesWithoutDisco"] == ["b"]
    assert info["discoveredNodes"] == ["a", "b"]


async def test_own_address_under_another_form_is_not_reported_unavailable(h: Harness) -> None:
    (a,) = await h.nodes("a", discovery=True)
    h.net.listeners["mem:alias-of-a"] = h.net.listeners["mem:a"]
    h.registry.nodes["alias"] = "mem:alias-of-a"
    assert a.discovery is not None
    checks = a.discovery.state.checks
    await wait_for(
        lambda: a.discovery is not None and a.discovery.state.checks > checks + 1,
        clock=h.clock,
        step=0.5,
    )
    assert a.discovery.state.unavailable == set()
    assert a.node.peers() == []


async def test_unreachable_discovered_node_is_unavailable(h: Harness) -> None:
    (a,) = await h.nodes("a", discovery=True)
    h.registry.nodes["ghost"] = "mem:ghost"
    assert a.discovery is not None
    await wait_for(
        lambda: a.discovery is not None and "ghost" in a.discovery.state.unavailable,
        clock=h.clock,
        step=0.5,
    )
    info = await a.system_info()
    assert info["unavailableNodes"] == ["ghost"] and info["availableNodes"] == ["a"]
    del h.registry.nodes["ghost"]
    await wait_for(
        lambda: a.discovery is not None and not a.discovery.state.unavailable,
        clock=h.clock,
        step=0.5,
    )
