"""RDBMS discovery on the real `discovery_nodes` table (SQLite always; pg/mysql when present)."""

from __future__ import annotations

from cluster_harness import Harness, wait_for

from meerkat.cluster.discovery import RdbmsBackend
from meerkat.db import Database


def backend(db: Database, name: str, address: str = "", cluster: str = "mim") -> RdbmsBackend:
    return RdbmsBackend(db, cluster_name=cluster, node_name=name, address=address or name)


async def test_nodes_register_with_the_smallest_free_number_and_see_each_other(
    database: Database,
) -> None:
    a, b = backend(database, "a"), backend(database, "b")
    assert [n.name for n in await a.get_nodes()] == ["a"]
    assert [n.name for n in await b.get_nodes()] == ["a", "b"]
    assert [(n.name, n.address) for n in await a.get_nodes()] == [("a", "a"), ("b", "b")]
    assert (a.node_num, b.node_num) == (1, 2)
    await database.execute("DELETE FROM discovery_nodes WHERE node_name = ?", "a")
    c = backend(database, "c")
    await c.get_nodes()
    assert c.node_num == 1


async def test_expired_rows_are_deleted_by_others_but_never_by_themselves(
    database: Database,
) -> None:
    a, b = backend(database, "a"), backend(database, "b")
    await a.get_nodes()
    await b.get_nodes()
    month_ago = await a.db_now() - 30 * 86400
    await database.execute("UPDATE discovery_nodes SET updated_timestamp = ?", month_ago)
    assert [n.name for n in await a.get_nodes()] == ["a"]  # a refreshes itself, removes b
    assert a.last_removed == ["b"]
    rows = await database.fetchall("SELECT node_name, updated_timestamp FROM discovery_nodes")
    assert [r[0] for r in rows] == ["a"] and rows[0][1] > month_ago


async def test_address_is_refreshed_and_another_cluster_is_invisible(database: Database) -> None:
    a = backend(database, "a", "10.0.0.1:4370")
    await a.get_nodes()
    a.address = "10.0.0.2:4370"
    other = backend(database, "x", cluster="other")
    assert [n.name for n in await other.get_nodes()] == ["x"]
    assert [n.address for n in await a.get_nodes()] == ["10.0.0.2:4370"]


async def test_node_moving_to_another_cluster_re_registers(database: Database) -> None:
    await backend(database, "a", cluster="one").get_nodes()
    moved = backend(database, "a", cluster="two")
    assert [n.name for n in await moved.get_nodes()] == ["a"]
    assert await database.fetchval("SELECT COUNT(*) FROM discovery_nodes") == 1


async def test_discovery_loop_joins_nodes_found_in_the_database(
    h: Harness, database: Database
) -> None:
    a, b = await h.nodes("a", "b")
    for c in (a, b):
        c.create_table("session")
        c.start_discovery(backend(database, c.name, c.address))
    await wait_for(
        lambda: all(
            c.table("session").nodes() == ["a", "b"]
            and c.discovery is not None
            and c.discovery.discovered_names() == ["a", "b"]
            for c in (a, b)
        ),
        clock=h.clock,
        step=0.5,
    )
    info = await a.system_info()
    assert info["discoveredNodes"] == ["a", "b"] and info["discoveryWorks"] is True
    await h.close()  # before the database fixture closes its pool
