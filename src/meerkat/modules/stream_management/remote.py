"""XEP-0198 resumption of a session that runs on another node of the cluster.

The client of a session on node A reconnects to node B and sends ``<resume previd=...>``
(or resumes inline in SASL2). B finds the SM-ID in the replicated `SmTable`, which names
A's session, and:

1. reserves a new sid of its own (`SessionManager.reserve`) with a pending handle that
   collects what is routed to it, and writes that sid's row, a copy of A's naming the
   session it takes over (`RESUMES_INFO`): every node that sees both rows routes to the new
   one (`SessionManager.user_sessions`), so nothing falls between A's row going away and
   B's arriving;
2. asks A over the cluster link (`SessionManager.take_over`, the ``sm_takeover`` call) to
   give the session up. On A, `hand_off` (the session manager's `takeover_handler`) asks the
   old session, in its own task and mailbox order, to stop writing, to pass the stanzas still
   queued for it through its usual path (so stream management buffers them), then to swap
   its routing to B's sid (`SessionManager.hand_off`: handle gone, stanzas arriving later are
   forwarded to B, its row deleted everywhere) and to end without unavailable presence or
   re-routing. A replicates the buffered messages it had not mirrored yet
   (`BufferMirror.settle`) and answers with the session as plain data
   (`handover.pack_session`);
3. binds the new connection to the same full JID under the new sid with the old presence,
   priority and module state (`C2SSession.adopt`: one replicated write of the record, no
   presence broadcast; what the pending handle collected follows the re-sent buffer),
   re-registers the SM-ID for itself, and drops A's mirrored copy of the buffer
   (`BufferMirror`), which its own copy replaces as the stanzas are re-sent. A checks after
   `ORPHAN_GRACE` that this happened; if not (B never got the answer), A routes those
   messages again itself.

The session-level hooks run where the session is: SM_REMOVE_CONNECTION on A (with no
session and ``was_available`` false: local per-session work such as mod_ping's watch
stops, nobody is told anything) and SM_REGISTER_CONNECTION on B.

The module then acknowledges the buffer up to the client's ``h`` and re-sends the rest, in
order, each message and presence with a XEP-0203 ``<delay/>`` stamped when it was first
buffered (IQs are re-sent as they were: a delay means nothing on a request or a result).

Failure is never a hang: A answers None (the session ended, the id is not its own, the
session did not get to the request within `HAND_OFF_TIMEOUT`), or the call fails or times out
(`ClusterResumption`), and the client gets ``<failed><item-not-found/>``; B deletes its
announced row and routes again what the pending handle collected. Two resumptions of one id
race in the old session's mailbox: the first wins, the other gets None.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...c2s.session import C2SSession, Handover
from ...core.acc import Acc
from ...core.hooks import SM_REGISTER_CONNECTION, SM_REMOVE_CONNECTION
from ...core.sessions import (
    RESUMES_INFO,
    SessionHandle,
    SessionRecord,
    broadcast_presence,
    sid_node,
)
from ...xmpp import ns
from ...xmpp.element import Element
from .._common import delay_element
from .buffer import SmState
from .handover import Unpackable, pack_session, unpack_session
from .table import SmEntry

if TYPE_CHECKING:
    from .module import StreamManagementModule

log = logging.getLogger(__name__)

ORPHAN_GRACE = 30.0
"""Seconds after a hand-off before the old node checks that the new one claimed it."""
HAND_OFF_TIMEOUT = 2.0
"""Seconds the old node waits for its session to take the request (the cluster call's own
timeout, `clustering.resumption.TAKEOVER_TIMEOUT`, must be longer)."""
DELAYED = frozenset({"message", "presence"})


class RemoteResumption:
    """Both sides of a cross-node resumption for one `StreamManagementModule`."""

    def __init__(self, module: StreamManagementModule) -> None:
        self.module = module

    # -- the old node ---------------------------------------------------------------------------
    async def hand_off(self, handle: SessionHandle, smid: str, new_sid: str) -> Any:
        """`SessionManager.takeover_handler`: give session `handle` up to `new_sid`."""
        from .module import KEY

        if not isinstance(handle, C2SSession):
            return None
        sm = self.module.sm_state(handle)
        if sm is None or sm.smid != smid:
            return None
        sessions = self.module.ctx.sessions

        async def swap(handover: Handover) -> None:
            assert handover.record is not None
            to = SessionRecord(new_sid, handover.jid, sid_node(new_sid))
            await sessions.hand_off(handover.record, to)

        handover = await handle.hand_off(swap, HAND_OFF_TIMEOUT)
        if handover is None or handover.record is None:
            return None
        moved = handover.mod_state.get(KEY, {}).get("sm")
        assert isinstance(moved, SmState)
        record = handover.record
        # The session left this node (local per-session work such as mod_ping's watch stops);
        # it was not available here any more, so nobody is told it went away.
        await self.module.ctx.run_hook(
            SM_REMOVE_CONNECTION, record.jid.domain, None,
            session=None, jid=record.jid, sid=record.sid, node=record.node,
            reason="resumed_elsewhere", status="", was_available=False,
        )  # fmt: skip
        if self.module.mirror is not None:
            # Rows still waiting for the mirror's delay go out (and reach every peer) before
            # the answer, so the new node's release of them cannot overtake them anywhere.
            await self.module.mirror.settle(record.sid)
        log.info("sm_handed_off jid=%s to=%s", handover.jid, new_sid)
        packed = pack_session(
            handover.jid, record.priority, record.info, moved, handover.mod_state, KEY
        )
        packed["sid"] = record.sid
        packed["seq"] = moved.first_seq
        if self.module.mirror is not None and moved.unacked:
            seqs = range(moved.first_seq, moved.out_seq)
            self.module.ctx.spawn(self._sweep(record, seqs), name="mod_stream_management sweep")
        return packed

    async def _sweep(self, record: SessionRecord, seqs: range) -> None:
        """The new node drops the old sid's mirrored messages once it holds the session. If
        they are still there after a while, it never got the answer (the call timed out, the
        link or the node broke): route them again here rather than keep them forever."""
        mirror = self.module.mirror
        assert mirror is not None
        await asyncio.sleep(ORPHAN_GRACE)
        left = mirror.held(record.sid, seqs)
        if not left:
            return
        log.warning("sm_handover_unclaimed jid=%s messages=%d", record.jid, len(left))
        mirror.released(record.sid, seqs)
        for el, _ in left:
            await self.module.reroute(el, record.jid)

    # -- the new node ---------------------------------------------------------------------------
    async def resume(self, session: C2SSession, entry: SmEntry) -> bool:
        """Take session `entry` over from its node onto `session`; False when it failed."""
        from .module import KEY

        module = self.module
        ctx = module.ctx
        sessions = ctx.sessions
        new_sid = sessions.new_sid(ctx.clock.now())
        pending = _Pending()
        sessions.reserve(new_sid, pending)
        successor = await self._announce(entry, new_sid)
        try:
            data = await sessions.take_over(entry.sid, entry.smid, new_sid)
            state = unpack_session(data) if data is not None else None
        except Unpackable as exc:
            log.warning("sm_handover_unreadable smid=%s error=%s", entry.smid, exc)
            state = None
        if state is None or state.jid != entry.jid:
            sessions.release(new_sid, pending)
            if successor is not None:
                await sessions.close(successor)
            for acc in pending.take(None):  # they were meant for the session that is gone
                await ctx.route_acc(acc)
            return False
        ip, port = session.peer
        info = dict(state.info)
        info.update(ip=ip, port=port, connection="c2s_tls" if session.transport.secure else "c2s")
        record = SessionRecord(new_sid, state.jid, ctx.node, state.priority, info)
        sm = module.new_state()
        sm.smid = entry.smid
        sm.handled, sm.sent, sm.acked = state.handled, state.sent, state.acked
        for el, stamp in state.buffer:
            sm.unacked.append(el)
            sm.stamps.append(stamp)
        sm.out_seq = len(state.buffer)
        mod_state = state.mod_state
        mod_state[KEY] = {"sm": sm}
        for acc in pending.take(session):  # behind the re-sent buffer, in arrival order
            session.deliver(acc)
        await session.adopt(record, broadcast_presence(record), mod_state)
        await ctx.run_hook(
            SM_REGISTER_CONNECTION, record.jid.domain, None,
            session=session, jid=record.jid, sid=new_sid,
        )  # fmt: skip
        await module.table.register(SmEntry(entry.smid, new_sid, state.jid, ctx.node))
        if module.mirror is not None and isinstance(data, dict):
            first = int(data.get("seq", 0))
            old_sid = str(data.get("sid", entry.sid))
            seqs = [first + i for i, (el, _) in enumerate(state.buffer) if el.name == "message"]
            module.mirror.released(old_sid, seqs)
        log.info("sm_resumed_from_node jid=%s node=%s", state.jid, entry.node)
        return True

    async def _announce(self, entry: SmEntry, new_sid: str) -> SessionRecord | None:
        """Write the new session's row, a copy of the old one naming it as the session it
        takes over, before asking the old node: once it is everywhere, every node routes
        to the new sid (`SessionManager.user_sessions`), so nothing sent while the old
        row is being deleted falls between the two. None when the old row is gone."""
        sessions = self.module.ctx.sessions
        old = sessions.session(entry.jid)
        if old is None or old.sid != entry.sid:
            return None
        info = {**old.info, RESUMES_INFO: old.sid}
        successor = SessionRecord(new_sid, old.jid, self.module.ctx.node, old.priority, info)
        return await sessions.update(successor)


class _Pending:
    """The new sid's handle while the old node is asked: collects what is routed to it."""

    def __init__(self) -> None:
        self.items: list[Acc] = []
        self.target: C2SSession | None = None

    def deliver(self, acc: Acc) -> bool:
        if self.target is not None:
            return self.target.deliver(acc)
        self.items.append(acc)
        return True

    def kick(self, condition: str, text: str | None = None) -> None:
        pass  # nothing to close yet; a kick of the resumed session reaches the session

    def take(self, target: C2SSession | None) -> list[Acc]:
        """What was collected; later deliveries go to `target` (None: refused)."""
        items, self.items = self.items, []
        self.target = target
        return items


def with_delay(el: Element, domain: str, stamp: float) -> Element:
    """A re-sent stanza: a copy of a message or presence with a XEP-0203 ``<delay/>`` from
    the server's `domain` (unless it has ours already); other stanzas unchanged."""
    if el.name not in DELAYED:
        return el
    for child in el.elements():
        if child.name == "delay" and child.xmlns == ns.DELAY and child.attrs.get("from") == domain:
            return el
    copy = el.copy()
    copy.children.append(delay_element(domain, stamp))
    return copy
