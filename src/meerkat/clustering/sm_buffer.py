"""Unacknowledged XEP-0198 messages outlive their node: the replicated buffer mirror.

A resumable session keeps the stanzas its client has not acknowledged in memory on the node
that runs it. If that node dies, nobody can resume the session, and without a copy those
messages would be lost. `ReplicatedSmBuffer` is the stream management module's
`BufferMirror` in a cluster, over the ``stream_management_buffer`` table:

    (sid, seq) -> [recipient full jid, message xml, first-buffered time]

- only messages of resumable sessions (presence is re-sent by the contacts' next change,
  IQs would be bounced anyway), and only in a cluster: a single node keeps nothing extra;
- a message is written only once it has stayed unacknowledged for `FLUSH_DELAY`; one
  acknowledged sooner (the common case: a connected client acks within milliseconds) is
  never serialized nor replicated, so a healthy stream costs a dict insert and a pop per
  message. What is due is batched: one insert and one delete per flush, not awaited
  (`ReplicatedTable.write_nowait`), so the client's stream never waits;
- a row is deleted when the client acknowledges the message, when it is re-sent after a
  resumption (then it is written again, under the new sequence number or the new node's
  sid), or when the session ends and re-routes its buffer itself;
- a session handed off to another node first writes its rows still waiting for their
  delay, and waits for every peer to have them (`settle`), then answers: the new node
  deletes the old sid's rows once it holds the session, and a row written after that
  deletion would stay behind and be routed again later (by the old node's orphan check,
  or by the leader when the old node dies) - a duplicate of a message the client got;
- when a node goes down, the table's leader (exactly one survivor in a connected segment,
  as in `cleanup`) takes every row of a session whose node is no longer in the table,
  deletes them and routes each message again, in order, to its original recipient: with
  the session gone the router stores it offline (mod_offline's rules: chat and normal
  messages with content; the delay stamp is the first-buffered time) or hands it to
  another resource of the user that is online.

The window that remains: a message written to the client and lost with its node before
its row reached any other node (at most `FLUSH_DELAY` plus the link's latency), and, in a
netsplit, messages of sessions on the other side that are both stored here and delivered
there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ..cluster import DownInfo, Key, ReplicatedTable
from ..core.acc import Acc
from ..core.router import Router
from ..core.sessions import sid_node
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StreamError
from ..xmpp.jid import Jid, JidError
from ..xmpp.stream import parse_element

log = logging.getLogger(__name__)

TABLE = "stream_management_buffer"
FLUSH_DELAY = 0.05
"""Seconds rows wait before they are replicated: the loss window on a node's death, traded
for not replicating messages the client acknowledges within it."""
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class ReplicatedSmBuffer:
    """`meerkat.modules.stream_management.BufferMirror` over a replicated table."""

    def __init__(
        self, table: ReplicatedTable, router: Router, spawn: Spawn, delay: float = FLUSH_DELAY
    ) -> None:
        self.table = table
        self.router = router
        self.spawn = spawn
        self.delay = delay
        self.closed = False
        self._inserts: dict[Key, tuple[Jid, Element, float, float]] = {}
        """Rows not written yet, oldest first: key -> (jid, message, stamp, loop time due)."""
        self._deletes: list[Key] = []
        self._timer: asyncio.TimerHandle | None = None
        self.rerouted: list[tuple[str, int]] = []
        """(dead node, messages) for each node this one cleaned up (tests, logs)."""
        table.on_node_down(self._on_down)

    def close(self) -> None:
        """This node is leaving: the peers it loses are not dead, it is (no cleanup)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- BufferMirror ---------------------------------------------------------------------------
    def buffered(self, sid: str, seq: int, jid: Jid, el: Element, stamp: float) -> None:
        loop = asyncio.get_running_loop()
        self._inserts[(sid, seq)] = (jid, el, stamp, loop.time() + self.delay)
        if self._timer is None:
            self._schedule(self.delay)

    def released(self, sid: str, seqs: Iterable[int]) -> None:
        inserts, deletes = self._inserts, self._deletes
        for seq in seqs:
            key = (sid, seq)
            if inserts.pop(key, None) is None:
                deletes.append(key)
        if self._timer is None and deletes:
            self._schedule(0.0)

    def held(self, sid: str, seqs: Iterable[int]) -> list[tuple[Element, float]]:
        out = []
        for seq in seqs:
            pending = self._inserts.get((sid, seq))
            if pending is not None:
                out.append((pending[1], pending[2]))
                continue
            value = self.table.get((sid, seq))
            acc = _acc(value) if value is not None else None
            if acc is not None:
                out.append((acc.element, acc.timestamp))
        return out

    async def settle(self, sid: str) -> None:
        keys = [key for key in self._inserts if key[0] == sid]
        if keys:
            rows = [_row(key, *self._inserts.pop(key)[:3]) for key in keys]
            await self.table.write_nowait(rows, ())

    def _schedule(self, delay: float) -> None:
        if not self.closed:
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        """Write the rows that are due and the deletions gathered since the last flush."""
        self._timer = None
        now = asyncio.get_running_loop().time()
        rows = []
        for key, (jid, el, stamp, due) in self._inserts.items():
            if due > now:
                break
            rows.append(_row(key, jid, el, stamp))
        for key, _ in rows:
            del self._inserts[key]
        deletes, self._deletes = self._deletes, []
        if rows or deletes:
            self.table.write_nowait(rows, deletes).add_done_callback(_log_failure)
        if self._inserts:
            first_due = next(iter(self._inserts.values()))[3]
            self._schedule(max(0.0, first_due - now))

    # -- a node died ----------------------------------------------------------------------------
    def _on_down(self, info: DownInfo) -> None:
        if self.closed or not info.is_leader:
            return
        alive = set(self.table.nodes())
        rows = self.table.select(lambda key, _: sid_node(str(key[0])) not in alive)
        if not rows:
            return
        keys = {key for key, _ in rows}
        # Local effect at once, so a new incarnation of the node never sees them.
        self.table.delete_where(lambda key, _: key in keys).add_done_callback(_log_failure)
        rows.sort(key=lambda row: (str(row[0][0]), row[0][1]))
        log.info("sm_buffer_node_down node=%s messages=%d", info.node.name, len(rows))
        self.spawn(self._reroute(info.node.name, [value for _, value in rows]))

    async def _reroute(self, dead: str, values: list[Any]) -> None:
        for value in values:
            acc = _acc(value)
            if acc is not None:
                await self.router.route(acc)
        self.rerouted.append((dead, len(values)))
        log.info("sm_buffer_node_down_done node=%s messages=%d", dead, len(values))


def _row(key: Key, jid: Jid, el: Element, stamp: float) -> tuple[Key, list[Any]]:
    return key, [str(jid), el.to_string(ns.CLIENT), stamp]


def _acc(value: Any) -> Acc | None:
    """The message of a row, addressed as it was, stamped with its first-buffered time."""
    try:
        owner, xml, stamp = value
        el = parse_element(str(xml))
        jid = Jid.parse(str(owner))
        to = Jid.parse(el.attrs["to"]) if "to" in el.attrs else jid
        frm = Jid.parse(el.attrs["from"]) if "from" in el.attrs else Jid("", jid.domain)
        return Acc(el, frm, to, host_type=jid.domain, timestamp=float(stamp))
    except (ValueError, TypeError, StreamError, JidError) as exc:
        log.warning("sm_buffer_row_unreadable error=%s", exc)
        return None


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("sm_buffer_write_failed", exc_info=fut.exception())
