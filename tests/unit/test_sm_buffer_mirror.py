"""`ReplicatedSmBuffer`: batched replication of unacknowledged messages, and what the table's
leader does with a dead node's rows (against a small stand-in for the replicated table)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from meerkat.cluster import DownInfo, NodeId
from meerkat.clustering.sm_buffer import ReplicatedSmBuffer
from meerkat.core.acc import Acc
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid

JID = Jid("alice", "localhost", "phone")
SID_A = "1.1@node1@localhost"
SID_B = "1.1@node2@localhost"


class FakeTable:
    """The parts of `ReplicatedTable` the mirror uses; writes are recorded and applied."""

    def __init__(self, nodes: list[str]) -> None:
        self.rows: dict[Any, Any] = {}
        self.writes: list[tuple[list[Any], list[Any]]] = []
        self.live = nodes
        self.handlers: list[Callable[[DownInfo], None]] = []

    def on_node_down(self, handler: Callable[[DownInfo], None]) -> None:
        self.handlers.append(handler)

    def get(self, key: Any) -> Any:
        return self.rows.get(key)

    def write_nowait(self, inserts: Iterable[Any], deletes: Iterable[Any]) -> asyncio.Future[Any]:
        ins, dels = list(inserts), list(deletes)
        self.writes.append((ins, dels))
        self.rows.update(ins)
        for key in dels:
            self.rows.pop(key, None)
        return done()

    def nodes(self) -> list[str]:
        return self.live

    def select(self, pred: Callable[[Any, Any], bool]) -> list[tuple[Any, Any]]:
        return [(k, v) for k, v in self.rows.items() if pred(k, v)]

    def delete_where(self, pred: Callable[[Any, Any], bool]) -> asyncio.Future[Any]:
        for key in [k for k, v in self.rows.items() if pred(k, v)]:
            del self.rows[key]
        return done()


def done() -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class FakeRouter:
    def __init__(self) -> None:
        self.routed: list[Acc] = []

    async def route(self, acc: Acc) -> None:
        self.routed.append(acc)


def message(body: str, to: str = str(JID)) -> Element:
    el = Element("message", ns.CLIENT, {"to": to, "from": "bob@localhost/b", "type": "chat"})
    el.add("body", text=body)
    return el


def mirror(nodes: list[str]) -> tuple[ReplicatedSmBuffer, FakeTable, FakeRouter, list[Any]]:
    table, router = FakeTable(nodes), FakeRouter()
    tasks: list[Coroutine[Any, Any, None]] = []
    buf = ReplicatedSmBuffer(table, router, tasks.append, delay=0.01)  # type: ignore[arg-type]
    return buf, table, router, tasks


async def test_rows_written_and_released_within_the_delay_are_one_write_or_none() -> None:
    buf, table, _, _ = mirror(["node1@localhost"])
    buf.buffered(SID_A, 0, JID, message("one"), 10.0)
    buf.buffered(SID_A, 1, JID, message("two"), 11.0)
    buf.released(SID_A, [0])
    assert buf.held(SID_A, [0, 1])[0][1] == 11.0  # not sent yet, but held
    await asyncio.sleep(0.05)
    assert len(table.writes) == 1
    [(inserts, deletes)] = table.writes
    assert [k for k, _ in inserts] == [(SID_A, 1)] and deletes == []
    assert table.rows[(SID_A, 1)][0] == str(JID) and table.rows[(SID_A, 1)][2] == 11.0
    assert [el.find_text("body") for el, _ in buf.held(SID_A, [0, 1])] == ["two"]
    buf.released(SID_A, [1])
    await asyncio.sleep(0.05)
    assert table.writes[-1] == ([], [(SID_A, 1)]) and not table.rows
    buf.buffered(SID_A, 2, JID, message("acked at once"), 12.0)
    buf.released(SID_A, [2])
    await asyncio.sleep(0.05)
    assert len(table.writes) == 2  # never left the node


async def test_the_leader_routes_a_dead_nodes_messages_again_in_order_and_drops_its_rows() -> None:
    buf, table, router, tasks = mirror(["node2@localhost"])
    table.rows = {
        (SID_A, 2): [str(JID), message("second").to_string(ns.CLIENT), 2.0],
        (SID_A, 1): [str(JID), message("first", to="alice@localhost").to_string(ns.CLIENT), 1.0],
        (SID_B, 1): [str(JID), message("mine").to_string(ns.CLIENT), 3.0],
        ("9.9@node1@localhost", 0): [str(JID), "<not xml", 4.0],
    }
    dead = NodeId("node1@localhost", "boot")
    table.handlers[0](DownInfo("stream_management_buffer", dead, "link_closed", False))
    assert tasks == [] and len(table.rows) == 4  # not the leader: nothing to do
    table.handlers[0](DownInfo("stream_management_buffer", dead, "link_closed", True))
    assert list(table.rows) == [(SID_B, 1)]
    [task] = tasks
    await task
    assert [(a.element.find_text("body"), str(a.to_jid), a.timestamp) for a in router.routed] == [
        ("first", "alice@localhost", 1.0),
        ("second", str(JID), 2.0),
    ]
    assert buf.rerouted == [("node1@localhost", 3)]


async def test_a_leaving_node_cleans_up_nobody() -> None:
    buf, table, _, tasks = mirror(["node2@localhost"])
    table.rows = {(SID_A, 1): [str(JID), message("m").to_string(ns.CLIENT), 1.0]}
    buf.close()
    table.handlers[0](
        DownInfo("stream_management_buffer", NodeId("node1@localhost", "b"), "stop", True)
    )
    assert tasks == [] and len(table.rows) == 1


async def test_settling_a_session_writes_its_waiting_rows_at_once_and_no_others() -> None:
    buf, table, _, _ = mirror(["node1@localhost"])
    buf.delay = 60.0
    buf.buffered(SID_A, 0, JID, message("one"), 10.0)
    buf.buffered(SID_B, 0, JID, message("other session"), 11.0)
    buf.buffered(SID_A, 1, JID, message("two"), 12.0)
    await buf.settle(SID_A)
    [(inserts, deletes)] = table.writes
    assert [k for k, _ in inserts] == [(SID_A, 0), (SID_A, 1)] and deletes == []
    assert [el.find_text("body") for el, _ in buf.held(SID_A, [0, 1])] == ["one", "two"]
    buf.released(SID_A, [0, 1])  # the new node took them: deleted, never written again
    buf.flush()
    assert list(table.rows) == [] and buf.held(SID_B, [0])[0][1] == 11.0
    await buf.settle(SID_A)  # nothing left to write
    assert len(table.writes) == 2
