"""Joining table segments (esl/cets cets_join_SUITE properties), in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cluster_harness import Harness, LostReplies, wait_for

from meerkat.cluster import Cluster, DownInfo, JoinError, NodeId, RemoteError, keep_greater
from meerkat.cluster.errors import CallTimeout
from meerkat.cluster.join import resolve_conflicts
from meerkat.cluster.lock import ACQUIRE_ATTEMPTS
from meerkat.cluster.store import Row


def keep_max_value(local: Row, remote: Row) -> Row:
    return local if local[1] >= remote[1] else remote


async def fill(c: Cluster, table: str, rows: dict[str, Any]) -> None:
    await c.table(table).insert_many([((k,), v) for k, v in rows.items()])


async def test_join_copies_existing_data_both_ways(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.connect_all(a, b)
    a.create_table("t")
    b.create_table("t")
    await fill(a, "t", {"x": 1})
    await fill(b, "t", {"y": 2})
    assert await a.tables.join("t", b.id) == "joined"
    assert a.table("t").dump() == b.table("t").dump() == [(("x",), 1), (("y",), 2)]
    assert a.table("t").join_ref == b.table("t").join_ref


async def test_join_without_handler_swaps_conflicting_values(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.connect_all(a, b)
    a.create_table("t")
    b.create_table("t")
    await fill(a, "t", {"k": "from_a"})
    await fill(b, "t", {"k": "from_b"})
    await a.tables.join("t", b.id)
    assert a.table("t").get(("k",)) == "from_b"
    assert b.table("t").get(("k",)) == "from_a"


async def test_join_with_handler_resolves_conflicts_identically_on_three_nodes(
    h: Harness,
) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.connect_all(a, b, c)
    for x in (a, b, c):
        x.create_table("t", conflict_handler=keep_max_value)
    await fill(a, "t", {"k1": 1, "k2": 20, "only_a": 0})
    await fill(b, "t", {"k1": 10, "k2": 2, "only_b": 0})
    await fill(c, "t", {"k1": 5, "k3": 7})
    await a.tables.join("t", b.id)
    await c.tables.join("t", a.id)
    expected = [(("k1",), 10), (("k2",), 20), (("k3",), 7), (("only_a",), 0), (("only_b",), 0)]
    assert a.table("t").dump() == b.table("t").dump() == c.table("t").dump() == expected


def test_conflict_walk_drops_identical_rows_and_merges_same_keys() -> None:
    local = [(("a",), 1), (("b",), 1), (("d",), 4)]
    remote = [(("b",), 2), (("c",), 3), (("d",), 4)]
    out_l, out_r = resolve_conflicts(local, remote, keep_greater)
    assert out_l == [(("a",), 1), (("b",), 2)]
    assert out_r == [(("b",), 2), (("c",), 3)]


async def test_joining_yourself_is_an_error(h: Harness) -> None:
    (a,) = await h.nodes("a")
    a.create_table("t")
    with pytest.raises(JoinError, match="join_with_the_same_pid"):
        await a.tables.join("t", a.id)


async def test_joining_an_already_joined_node_does_nothing(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    ref = a.table("t").join_ref
    assert await b.tables.join("t", a.id) == "already_joined"
    assert a.table("t").join_ref == ref


async def test_join_fails_when_the_remote_has_no_such_table(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.connect_all(a, b)
    a.create_table("t")
    with pytest.raises(JoinError, match="unknown_table"):
        await a.tables.join("t", b.id)


async def test_node_not_reachable_from_the_whole_segment_cannot_join(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("t", a, b)
    c.create_table("t")
    await c.node.connect(a.address)  # c sees a but not b
    with pytest.raises(JoinError, match="check_could_reach_each_other_failed"):
        await a.tables.join("t", c.id)
    assert a.table("t").nodes() == ["a", "b"] and c.table("t").nodes() == ["c"]


async def test_segment_with_inconsistent_peer_lists_is_refused(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("t", a, b)
    await h.connect_all(a, b, c)
    c.create_table("t")
    b.table("t").peers.clear()  # b no longer agrees with a
    with pytest.raises(JoinError, match="check_fully_connected_failed"):
        await c.tables.join("t", a.id)


async def test_concurrent_joins_are_serialised_by_the_cluster_lock(h: Harness) -> None:
    a, b, c, d = await h.nodes("a", "b", "c", "d")
    await h.connect_all(a, b, c, d)
    for x in (a, b, c, d):
        x.create_table("t")
        await fill(x, "t", {x.name: 1})
    results = await asyncio.gather(
        a.tables.join("t", b.id), c.tables.join("t", d.id), b.tables.join("t", a.id)
    )
    assert sorted(results) == ["already_joined", "joined", "joined"]
    await a.tables.join("t", c.id)
    for x in (a, b, c, d):
        assert x.table("t").nodes() == ["a", "b", "c", "d"]
        assert [k for k, _ in x.table("t").items()] == [("a",), ("b",), ("c",), ("d",)]


async def test_write_issued_during_a_join_is_held_then_replicated_to_all(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.connect_all(a, b)
    a.create_table("t")
    b.create_table("t")
    await fill(a, "t", {"gone": 1})
    pending: list[asyncio.Future[None]] = []

    async def checkpoint(name: str) -> None:
        if name == "send_dump:b":  # a already has its dump and b as a peer
            pending.append(asyncio.ensure_future(a.table("t").delete(("gone",))))
            pending.append(asyncio.ensure_future(a.table("t").insert(("new",), 2)))
            await asyncio.sleep(0.01)
            assert not any(p.done() for p in pending)

    await a.tables.join("t", b.id, checkpoint)
    await asyncio.gather(*pending)
    assert a.table("t").dump() == b.table("t").dump() == [(("new",), 2)]


async def test_insert_new_during_a_join_is_run_by_the_new_leader(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("t", a, b)
    c.create_table("t")
    await h.connect_all(a, b, c)
    ops: list[asyncio.Future[bool]] = []

    async def checkpoint(name: str) -> None:
        if name == "paused":
            ops.append(asyncio.ensure_future(a.table("t").insert_new(("k",), "v")))
            await asyncio.sleep(0.01)

    await a.tables.join("t", c.id, checkpoint)
    await wait_for(ops[0].done, clock=h.clock, step=0.01)  # b answers wrong_leader: retry
    assert ops[0].result() is True
    assert all(x.table("t").get(("k",)) == "v" for x in (a, b, c))
    assert all(x.table("t").leader == c.id for x in (a, b, c))


async def test_join_interrupted_before_second_dump_leaves_sides_disconnected(
    h: Harness,
) -> None:
    a, b = await h.nodes("a", "b")
    await h.connect_all(a, b)
    a.create_table("t")
    b.create_table("t")
    await fill(a, "t", {"a": 1})
    await fill(b, "t", {"b": 1})
    downs: list[DownInfo] = []
    a.table("t").on_node_down(downs.append)

    async def checkpoint(name: str) -> None:
        if name == "send_dump:b":  # local side (a) already got b's dump
            raise RuntimeError("coordinator crashed")

    with pytest.raises(RuntimeError):
        await a.tables.join("t", b.id, checkpoint)
    await wait_for(lambda: not a.table("t").peers and not b.table("t").peers)
    assert a.table("t").dump() == [(("a",), 1), (("b",), 1)]
    assert b.table("t").dump() == [(("b",), 1)]
    assert [(d.node, d.reason) for d in downs] == [(b.id, "check_server_failed")]
    assert a.table("t").pauses == {} and b.table("t").pauses == {}


async def test_servers_with_different_join_refs_drop_each_other_after_unpause(
    h: Harness,
) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    a.table("t").pause(a.id, "p")
    a.table("t").join_ref = "diverged"
    a.table("t").unpause("p")
    await wait_for(lambda: not a.table("t").peers and not b.table("t").peers)


async def test_join_lock_is_released_when_its_holder_goes_down(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.connect_all(a, b, c)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with c.tables.lock.hold():
            entered.set()
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await entered.wait()
    assert a.tables.lock.holder == c.id
    await h.stop(c)
    await wait_for(lambda: a.tables.lock.holder is None)
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    a.create_table("t")
    b.create_table("t")
    assert await a.tables.join("t", b.id) == "joined"


def lose_lock_grants(h: Harness, name: str, count: int) -> LostReplies:
    """`name`'s transport: its replies to the first `count` lock acquires never leave."""
    return LostReplies(
        h.net.transport(f"mem:{name}"), "cets_lock", count=count, match=lambda p: p[0] == "acquire"
    )


async def test_a_lock_acquire_whose_reply_is_lost_is_asked_again_and_granted(
    h: Harness,
) -> None:
    lossy = lose_lock_grants(h, "a", 1)
    a = await h.node("a", transport=lossy)
    b = await h.node("b")
    await h.connect_all(a, b)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with b.tables.lock.hold() as locked:
            assert locked == [a.id, b.id]
            entered.set()
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await wait_for(lambda: lossy.lost == 1)
    assert a.tables.lock.holder == b.id and not entered.is_set()  # granted, b never heard
    await wait_for(entered.is_set, clock=h.clock, step=0.5)  # b asks again, same token
    assert b.node.clock.monotonic() <= b.node.call_timeout + 1
    release.set()
    await holder
    await wait_for(lambda: a.tables.lock.holder is None and b.tables.lock.holder is None)
    assert not a.tables.lock._queue


async def test_a_lock_acquire_never_answered_fails_and_leaves_no_lock_held(h: Harness) -> None:
    lossy = lose_lock_grants(h, "a", ACQUIRE_ATTEMPTS)
    a = await h.node("a", transport=lossy)
    b = await h.node("b")
    await h.connect_all(a, b)

    async def hold() -> None:
        async with b.tables.lock.hold():
            raise AssertionError("the lock was never granted to b")

    holder = asyncio.ensure_future(hold())
    await wait_for(holder.done, clock=h.clock, step=0.5)
    with pytest.raises(CallTimeout, match="cluster lock on a: no grant after 3 attempts"):
        await holder
    assert h.clock.monotonic() <= ACQUIRE_ATTEMPTS * b.node.call_timeout + 1
    await wait_for(lambda: a.tables.lock.holder is None)  # b's release reached a
    a.create_table("t")
    b.create_table("t")
    assert await a.tables.join("t", b.id) == "joined"


async def test_a_lost_lock_grant_does_not_block_the_next_joins(h: Harness) -> None:
    """The discovery join flake's wedge, with the reply lost on a link that stays up:
    the first grant n0 sends never arrives. Its requester asks again and joins; every
    later join gets the lock and the three nodes end in one segment."""
    lossy = lose_lock_grants(h, "n0", 1)
    n0 = await h.node("n0", transport=lossy, discovery=True)
    others = [await h.node(n, discovery=True) for n in ("n1", "n2")]
    clusters = [n0, *others]
    for c in clusters:
        c.create_table("session")
    names = ["n0", "n1", "n2"]
    await wait_for(
        lambda: all(c.table("session").nodes() == names for c in clusters),
        clock=h.clock,
        step=0.5,
        timeout=20,
    )
    assert lossy.lost == 1
    # Discovery keeps checking the segment and takes the lock for it now and then: a lock
    # held at one instant is not the wedge; a lock that is never free again is.
    await wait_for(
        lambda: all(c.tables.lock.holder is None for c in clusters),
        clock=h.clock,
        step=0.5,
        timeout=20,
    )


async def test_dump_arriving_without_the_matching_pause_is_ignored(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    dump = [[("x",), 1]]
    with pytest.raises(RemoteError, match="ignored"):
        await a.tables.call(b.id, ["t", "send_dump", "ref", "no-such-pause", [], dump])
    await a.tables.call(b.id, ["t", "pause", "p1"])
    with pytest.raises(RemoteError, match="ignored"):
        await a.tables.call(b.id, ["t", "send_dump", "ref", "other-pause", [], dump])
    assert ("x",) not in b.table("t")
    await a.tables.call(b.id, ["t", "unpause", "p1"])


async def test_acks_from_unknown_peers_or_requests_are_ignored(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    a.table("t").ack(NodeId("ghost", "x"), 1)
    a.table("t").ack(b.id, 12345)
    await a.table("t").insert(("k",), 1)
    assert b.table("t").get(("k",)) == 1
