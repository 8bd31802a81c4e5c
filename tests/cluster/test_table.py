"""ReplicatedTable core semantics (esl/cets cets_SUITE properties), in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cluster_harness import Harness, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat.cluster import DownInfo, LeaderOpFailed, NodeId, PeerUnavailable, wire
from meerkat.cluster.errors import ClusterError
from meerkat.cluster.store import LocalStore, check_key, sort_key
from meerkat.cluster.table import op_from_wire, op_to_wire


def test_keys_of_mixed_types_have_one_total_order() -> None:
    keys = [("b",), (2,), (b"x",), (1, "z"), ("a", 1), ("a", "1"), (1,)]
    assert sorted(keys, key=sort_key) == [
        (1,),
        (1, "z"),
        (2,),
        (b"x",),
        ("a", 1),
        ("a", "1"),
        ("b",),
    ]


def test_prefix_match_returns_rows_in_key_order() -> None:
    s = LocalStore()
    for key in [
        ("h", "bob", "r2", 5),
        ("h", "alice", "r1", 1),
        ("h", "bob", "r1", 3),
        ("g", "bob", "r1", 0),
        ("h", "bob"),
    ]:
        s.insert(key, None)
    assert [k for k, _ in s.prefix(("h", "bob"))] == [
        ("h", "bob"),
        ("h", "bob", "r1", 3),
        ("h", "bob", "r2", 5),
    ]
    s.delete(("h", "bob", "r1", 3))
    assert [k for k, _ in s.prefix(("h", "bob", "r1"))] == []


@pytest.mark.parametrize("bad", [("a", 1.5), ("a", None), (True,), ("a", ("b",))])
def test_keys_and_prefixes_with_other_part_types_are_refused(bad: tuple[Any, ...]) -> None:
    s = LocalStore()
    s.insert(("a", "b"), None)
    with pytest.raises(TypeError):
        check_key(bad)
    with pytest.raises(TypeError):
        list(s.prefix(bad))
    with pytest.raises(TypeError):
        sort_key(bad)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.lists(st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 2)), max_size=3)
            .map(tuple)
            .filter(bool),
        ),
        max_size=40,
    ),
    st.lists(st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 2)), max_size=3).map(tuple),
)
def test_prefix_scans_stay_right_through_inserts_and_deletes(
    ops: list[tuple[bool, tuple[str | int, ...]]], probe: tuple[str | int, ...]
) -> None:
    s = LocalStore(bag=True)
    s.prefix(probe)  # an index for this length exists from the start, and is kept up to date
    for add, key in ops:
        if add:
            s.insert(key, len(key))
        else:
            s.delete(key)
    keys = [k for k, _ in s.items()]
    assert keys == sorted(set(keys), key=sort_key)  # every key once, in the cluster's order
    expected = [(k, v) for k, v in s.items() if sort_key(k)[: len(probe)] == sort_key(probe)]
    assert list(s.prefix(probe)) == expected
    fresh = LocalStore(bag=True)  # and an index built from a full table
    for k, v in s.items():
        fresh.insert(k, v)
    assert list(fresh.prefix(probe)) == expected


async def test_single_node_table_supports_every_local_op(h: Harness) -> None:
    (a,) = await h.nodes("a")
    t = a.create_table("t")
    await t.insert(("k1",), 1)
    await t.insert_many([(("k2",), 2), (("k3",), 3)])
    assert t.get(("k1",)) == 1 and len(t) == 3
    await t.delete(("k1",))
    await t.delete_many([("k2",)])
    assert t.dump() == [(("k3",), 3)]
    await t.delete_object(("k3",), 99)
    assert len(t) == 1
    await t.delete_objects([(("k3",), 3)])
    assert len(t) == 0
    assert await t.insert_new(("n",), 1) is True
    assert await t.insert_new(("n",), 2) is False
    await t.insert_serial(("n",), 3)
    assert t.get(("n",)) == 3


async def test_bag_keeps_distinct_values_and_deletes_single_objects(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("bag", a, b, bag=True)
    ta, tb = a.table("bag"), b.table("bag")
    await ta.insert_many([(("d",), "h1"), (("d",), "h2"), (("d",), "h1")])
    assert tb.get_all(("d",)) == ["h1", "h2"]
    await tb.delete_object(("d",), "h1")
    assert ta.get_all(("d",)) == ["h2"]
    await ta.delete_objects([(("d",), "h2"), (("d",), "missing")])
    assert ("d",) not in tb


async def test_bag_with_conflict_handler_is_refused(h: Harness) -> None:
    (a,) = await h.nodes("a")
    with pytest.raises(ClusterError, match="bag_with_conflict_handler"):
        a.create_table("x", bag=True, conflict_handler=lambda loc, rem: loc)


async def test_a_returned_write_is_readable_on_every_joined_node(h: Harness) -> None:
    nodes = await h.nodes("a", "b", "c", "d")
    await h.joined("t", *nodes)
    for i, c in enumerate(nodes):
        await c.table("t").insert(("k", i), c.name)
        for other in nodes:
            assert other.table("t").get(("k", i)) == c.name
    await nodes[2].table("t").delete_many([("k", 0), ("k", 1)])
    assert all(len(c.table("t")) == 2 for c in nodes)
    assert all(c.table("t").nodes() == ["a", "b", "c", "d"] for c in nodes)


async def test_write_waiting_for_a_partitioned_peer_returns_when_it_is_declared_down(
    h: Harness,
) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    h.net.partition([a.address], [b.address])
    write = asyncio.ensure_future(a.table("t").insert(("k",), 1))
    await asyncio.sleep(0.01)
    assert not write.done()
    await wait_for(write.done, clock=h.clock, step=0.5)
    assert a.table("t").peers == set()
    assert a.table("t").node_down_history == [("b", "heartbeat_timeout")]


async def test_a_burst_of_writes_is_acked_by_one_cumulative_ack(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    sent: list[list[Any]] = []
    send = b.tables.send

    def spy(peer: NodeId, payload: list[Any]) -> None:
        sent.append(payload)
        send(peer, payload)

    b.tables.send = spy  # type: ignore[method-assign]
    writes = [asyncio.ensure_future(a.table("t").insert(("k", i), i)) for i in range(10)]
    await asyncio.wait_for(asyncio.gather(*writes), 5)
    acks = [p for p in sent if p[1] == "ack"]
    assert len(acks) == 1 and acks[0][:2] == ["t", "ack"]
    assert [b.table("t").get(("k", i)) for i in range(10)] == list(range(10))


async def test_a_burst_of_mixed_writes_lands_on_the_peer_in_order_with_exact_keys(
    h: Harness,
) -> None:
    """Keys travel as arrays (`op_to_wire`): the peer must rebuild the very same tuples
    (int, bytes and str parts), keep tuple values as tuples and apply the ops in order."""
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    t = a.table("t")
    writes = [t.write_nowait(inserts=[(("k", i % 3, b"x"), ("v", i))]) for i in range(30)]
    writes.append(t.write_nowait(deletes=[("k", 0, b"x")]))
    writes.append(t.write_nowait(inserts=[(("k", 0, b"x"), "last")]))
    await asyncio.wait_for(asyncio.gather(*writes), 5)
    expected = [(("k", 0, b"x"), "last"), (("k", 1, b"x"), ("v", 28)), (("k", 2, b"x"), ("v", 29))]
    assert a.table("t").dump() == expected
    assert b.table("t").dump() == expected
    assert [k for k, _ in b.table("t").match(("k",))] == [k for k, _ in expected]
    await t.delete_objects([(("k", 1, b"x"), ("v", 28))])
    await t.delete_many([("k", 2, b"x")])
    assert b.table("t").dump() == [(("k", 0, b"x"), "last")]


@pytest.mark.parametrize(
    ("op", "on_the_wire", "applied"),
    [
        (
            ["insert", [[("h", 1, b"r"), ["n", ("t", 2)]]]],
            ["insert", [[["h", 1, b"r"], ["n", ("t", 2)]]]],
            ["insert", [(("h", 1, b"r"), ["n", ("t", 2)])]],
        ),
        (
            ["delete", [("h", 1, b"r"), ("g",)]],
            ["delete", [["h", 1, b"r"], ["g"]]],
            ["delete", [("h", 1, b"r"), ("g",)]],
        ),
        (
            ["delete_objects", [[("h",), {"a": 1}]]],
            ["delete_objects", [[["h"], {"a": 1}]]],
            ["delete_objects", [(("h",), {"a": 1})]],
        ),
        (
            ["insert_new", [("h", "x"), ("v",)]],
            ["insert_new", [["h", "x"], ("v",)]],
            ["insert_new", [("h", "x"), ("v",)]],
        ),
    ],
)
def test_a_table_op_travels_with_array_keys_and_is_applied_with_tuple_keys(
    op: list[Any], on_the_wire: list[Any], applied: list[Any]
) -> None:
    sent = op_to_wire(op)
    assert repr(sent) == repr(on_the_wire)  # repr: a tuple must not pass for a list
    decoder = wire.FrameDecoder()
    decoder.feed(wire.encode(sent))
    (received,) = decoder.messages()
    back = op_from_wire(received)
    assert repr(back) == repr(applied)  # tuples where tuples were sent, lists where lists


async def test_an_ack_from_one_peer_does_not_finish_a_write_another_peer_owes(
    h: Harness,
) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("t", a, b, c)
    h.net.partition([a.address], [c.address])
    first = asyncio.ensure_future(a.table("t").insert(("k", 1), 1))
    await wait_for(lambda: b.table("t").get(("k", 1)) == 1)
    await asyncio.sleep(0.01)  # b's ack has arrived
    assert not first.done()
    await wait_for(first.done, clock=h.clock, step=0.5)  # c is declared down
    assert a.table("t").node_down_history == [("c", "heartbeat_timeout")]
    await asyncio.wait_for(a.table("t").insert(("k", 2), 2), 1)  # only b is asked now


async def test_remote_op_with_a_different_join_ref_is_acked_but_not_applied(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    b.table("t").join_ref = "stale"
    await a.table("t").insert(("k",), 1)  # returns: b acked
    assert ("k",) not in b.table("t")


async def test_leader_is_the_greatest_node_id_everywhere(h: Harness) -> None:
    nodes = await h.nodes("a", "c", "b")
    await h.joined("t", *nodes)
    assert {c.table("t").leader for c in nodes} == {NodeId("c", nodes[1].id.boot_id)}


async def test_insert_new_is_decided_by_the_leader_from_any_node(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    assert await a.table("t").insert_new(("room",), "a") is True
    assert await b.table("t").insert_new(("room",), "b") is False
    assert a.table("t").get(("room",)) == b.table("t").get(("room",)) == "a"


async def test_concurrent_insert_new_has_one_winner_on_all_nodes(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("t", a, b, c)
    results = await asyncio.gather(*(x.table("t").insert_new(("k",), x.name) for x in (a, b, c)))
    assert sorted(results) == [False, False, True]
    assert len({x.table("t").get(("k",)) for x in (a, b, c)}) == 1


async def test_concurrent_insert_serial_ends_consistent(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    await asyncio.gather(
        *(x.table("t").insert_serial(("k",), f"{x.name}{i}") for i in range(5) for x in (a, b))
    )
    assert a.table("t").get(("k",)) == b.table("t").get(("k",))


async def test_insert_new_consults_only_the_leader_copy(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    a.table("t").store.insert(("k",), "local-only")  # inconsistent on purpose (b leads)
    assert await a.table("t").insert_new(("k",), "new") is True
    assert a.table("t").get(("k",)) == "local-only"  # replicas do not overwrite
    assert b.table("t").get(("k",)) == "new"


async def test_leader_op_is_retried_on_wrong_leader_then_fails(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    wrong: list[NodeId] = []
    a.table("t").handle_wrong_leader = wrong.append
    b.table("t").peers.add(NodeId("z", "fake"))  # b now thinks z leads
    op = asyncio.ensure_future(a.table("t").insert_new(("k",), 1))
    await wait_for(op.done, clock=h.clock, step=0.5)
    with pytest.raises(LeaderOpFailed):
        op.result()
    assert len(wrong) == 8 and set(wrong) == {b.id}


async def test_insert_new_fails_if_the_leader_dies(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    b.table("t").pause(b.id, "hold")  # leader holds the op in its backlog
    op = asyncio.ensure_future(a.table("t").insert_new(("k",), 1))
    await asyncio.sleep(0.01)
    await h.stop(b)
    with pytest.raises(PeerUnavailable):
        await op


async def test_ops_issued_while_paused_are_applied_in_order_after_unpause(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    t = a.table("t")
    t.pause(a.id, "p1")
    t.pause(a.id, "p2")
    ops = [asyncio.ensure_future(t.insert(("k",), i)) for i in range(5)]
    ops.append(asyncio.ensure_future(t.delete(("k",))))
    ops.append(asyncio.ensure_future(t.insert(("k",), "last")))
    await asyncio.sleep(0.01)
    assert not any(o.done() for o in ops) and ("k",) not in t
    t.unpause("p1")
    await asyncio.sleep(0.01)
    assert not any(o.done() for o in ops)
    t.unpause("p2")
    await asyncio.gather(*ops)
    assert t.get(("k",)) == b.table("t").get(("k",)) == "last"
    with pytest.raises(ClusterError, match="unknown_pause_monitor"):
        t.unpause("p2")


async def test_pause_is_released_when_its_owner_node_goes_down(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    await b.tables.call(a.id, ["t", "pause", "ref"])
    op = asyncio.ensure_future(a.table("t").insert(("k",), 1))
    await asyncio.sleep(0.01)
    assert not op.done()
    await h.stop(b)
    await asyncio.wait_for(op, 2)
    assert a.table("t").pauses == {}


async def test_handle_down_runs_with_the_leader_flag_after_removal(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    seen: list[DownInfo] = []
    a.table("t").on_node_down(seen.append)
    await h.stop(b)
    await wait_for(lambda: bool(seen))
    assert seen == [DownInfo("t", b.id, "peer_closed", True)]


async def test_rows_owned_by_a_lost_node_can_be_deleted_cluster_wide(h: Harness) -> None:
    a, b, c = await h.nodes("a", "b", "c")
    await h.joined("session", a, b, c)
    for x in (a, b, c):
        await x.table("session").insert(("example.com", "user", x.name, 1), {"prio": 0})
    pending: list[asyncio.Future[int]] = []

    def cleanup(info: DownInfo) -> None:
        if info.is_leader:  # one survivor is enough since the delete is replicated
            pending.append(c.table("session").delete_node_rows(info.node.name, 2))
            assert len(c.table("session")) == 2  # applied locally at once

    a.table("session").on_node_down(cleanup)
    c.table("session").on_node_down(cleanup)
    await h.stop(b)
    await wait_for(lambda: bool(pending))
    assert await pending[0] == 1
    assert [k[2] for k, _ in a.table("session").items()] == ["a", "c"]
    assert [k[2] for k, _ in c.table("session").items()] == ["a", "c"]


async def test_insert_new_or_lookup_returns_the_existing_values(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("keystore", a, b)
    assert await a.table("keystore").insert_new_or_lookup(("key",), "k1") == (True, ["k1"])
    assert await b.table("keystore").insert_new_or_lookup(("key",), "k2") == (False, ["k1"])
    assert b.table("keystore").get(("key",)) == "k1"


async def test_info_reports_size_nodes_and_memory(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("t", a, b)
    await a.table("t").insert(("k",), "v" * 100)
    info = b.table("t").info()
    assert info["size"] == 1 and info["nodes"] == ["a", "b"] and info["memory"] > 100


async def test_delete_where_removes_matching_rows_everywhere(h: Harness) -> None:
    a, b = await h.nodes("a", "b")
    await h.joined("session", a, b)
    await a.table("session").insert_many(
        [
            (("d", "u", "r1", "1.1@a"), 0),
            (("d", "u", "r2", "1.2@b"), 0),
            (("d", "v", "r", "2@b"), 1),
        ]
    )
    removed = a.table("session").delete_where(lambda k, _: str(k[3]).endswith("@b"))
    assert len(a.table("session")) == 1  # local effect is immediate
    assert await removed == 2
    assert b.table("session").dump() == [(("d", "u", "r1", "1.1@a"), 0)]
