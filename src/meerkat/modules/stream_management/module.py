"""mod_stream_management: XEP-0198 Stream Management (``urn:xmpp:sm:3``).

- Enabling: ``<enable/>`` after binding, or inline in a Bind 2 request (XEP-0386). With
  ``resume``, the stream gets an SM-ID registered in the `SmTable`.
- Counting: every stanza the client sends (C2S_PREPROCESSING_HOOK) and every stanza written to
  it (XMPP_PRESEND_ELEMENT, priority 90: after CSI, which holds stanzas before they count).
  Written stanzas stay in the buffer until acknowledged; past `buffer_max` the stream is closed
  (resource-constraint). With `ack_freq` N, an ``<r/>`` follows every N-th stanza.
- Detaching: a resumable session whose transport is lost without ``</stream:stream>`` is kept
  (USER_SOCKET_CLOSED -> `session.detach(resume_timeout)`), still registered, buffering.
- Resuming: ``<resume/>`` after authentication, or inline in SASL2 (SASL2_SUCCESS): the new
  connection takes the old session over - on this node with `C2SSession.take_over` (same
  sid, state and queued stanzas), on another node through the cluster (`remote`: the old
  node hands the session over as plain data, this node continues it under a new sid of its
  own) - acknowledges the old buffer up to the client's ``h`` and re-sends the rest, in
  order, exactly once, messages and presence with a XEP-0203 ``<delay/>`` stamped when they
  were first buffered. An ``h`` above what was sent is a stream error with
  ``<handled-count-too-high/>`` (XEP-0198 §4).
- Ending: a session that ends unresumed (timeout, kick, clean close, error) first retires
  its SM-ID (USER_TERMINATE, while the session still counts as resumable: stale h written,
  then the id deleted), so a ``<resume/>`` racing the end gets the stale h; then it
  re-routes its unacknowledged stanzas (REROUTE_UNACKED_MESSAGES): messages reach another
  resource or offline storage, IQs are bounced by the router. Its SM-ID answers late
  resumptions with ``<failed h=...><item-not-found/>`` while `stale_h` keeps it.

In a cluster, SM-IDs live in the replicated table the session manager offers
(`SessionManager.sm_table`, see `clustering.resumption`), and with `cluster_buffer` the
messages of resumable sessions' buffers are mirrored (`SessionManager.sm_buffer`, a
`BufferMirror`, see `clustering.sm_buffer`): when a node dies, its sessions cannot be
resumed (item-not-found) and a survivor routes their unacknowledged messages again, which
lands them in offline storage. A single node keeps both in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ...c2s.session import C2SSession
from ...c2s.states import State
from ...core.acc import Acc
from ...core.hooks import (
    BIND2_ENABLE_FEATURES,
    BIND2_STREAM_FEATURES,
    C2S_PREPROCESSING_HOOK,
    C2S_STREAM_FEATURES,
    REROUTE_UNACKED_MESSAGES,
    SASL2_STREAM_FEATURES,
    SASL2_SUCCESS,
    STOP,
    USER_SEND_XMLEL,
    USER_SOCKET_CLOSED,
    USER_TERMINATE,
    XMPP_PRESEND_ELEMENT,
)
from ...core.modules import HookSpec, Module
from ...xmpp import ns
from ...xmpp.element import Element
from ...xmpp.jid import Jid, JidError
from .._common import doc
from . import stanzas
from .buffer import HandledCountTooHigh, SmState
from .remote import RemoteResumption, with_delay
from .table import NONCE_BYTES, BufferMirror, LocalSmTable, SmEntry, SmTable, StaleH, make_smid

log = logging.getLogger(__name__)
KEY = "mod_stream_management"
PRESEND_PRIORITY = 90
"""Late in XMPP_PRESEND_ELEMENT: what passes this handler is written, so it is counted."""
_STANZAS = frozenset({"message", "presence", "iq"})


@dataclass(frozen=True)
class StaleHConfig:
    """`[modules.mod_stream_management.stale_h]`.

    Enabled by default (MongooseIM: disabled): a client that comes back late learns which of its
    stanzas arrived, at the cost of one small entry per ended session for `geriatric` seconds.
    """

    enabled: bool = field(
        default=True, metadata=doc("Remember the h of unresumed sessions for late clients.")
    )
    repeat_after: int = field(default=1800, metadata=doc("Seconds between pruning runs."))
    geriatric: int = field(default=3600, metadata=doc("Seconds a stale h is kept."))


@dataclass(frozen=True)
class StreamManagementConfig:
    """`[modules.mod_stream_management]`."""

    buffer: bool = field(default=True, metadata=doc("Keep unacknowledged stanzas."))
    buffer_max: int | Literal["infinity"] = field(
        default=100, metadata=doc("Unacknowledged stanzas kept before the stream is closed.")
    )
    ack: bool = field(default=True, metadata=doc("Ask the client for acks."))
    ack_freq: int = field(default=1, metadata=doc("Ask for an ack every this many stanzas."))
    resume_timeout: int = field(
        default=600, metadata=doc("Seconds a lost session waits to be resumed.")
    )
    stale_h: StaleHConfig = field(default_factory=StaleHConfig, metadata=doc("Stale h."))
    cluster_buffer: bool = field(
        default=True,
        metadata=doc(
            "In a cluster, mirror unacknowledged messages of resumable sessions in a "
            "replicated table, so that they reach offline storage when their node dies."
        ),
    )

    def validate(self) -> list[str]:
        problems = []
        if isinstance(self.buffer_max, int) and self.buffer_max < 1:
            problems.append('buffer_max: must be positive or "infinity"')
        if self.ack_freq < 1:
            problems.append("ack_freq: must be positive")
        if self.resume_timeout < 1:
            problems.append("resume_timeout: must be positive")
        return problems


Reply = Callable[[Element], None]


class StreamManagementModule(Module):
    """XEP-0198 acks and resumption for c2s sessions."""

    name = "mod_stream_management"
    Config = StreamManagementConfig

    def __init__(self, ctx: Any, config: StreamManagementConfig) -> None:
        super().__init__(ctx, config)
        self.config: StreamManagementConfig = config
        shared: SmTable | None = ctx.sessions.sm_table
        self.table: SmTable = shared if shared is not None else LocalSmTable()
        """Where SM-IDs live: the cluster's replicated table, or this node's own."""
        self.mirror: BufferMirror | None = ctx.sessions.sm_buffer if config.cluster_buffer else None
        """The cluster's copy of unacknowledged messages (None: single node, memory only)."""
        self.remote = RemoteResumption(self)
        self._pruner: asyncio.Task[None] | None = None

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(C2S_STREAM_FEATURES, self.on_stream_features),
            HookSpec(SASL2_STREAM_FEATURES, self.on_sasl2_features),
            HookSpec(BIND2_STREAM_FEATURES, self.on_bind2_features),
            HookSpec(BIND2_ENABLE_FEATURES, self.on_bind2_enable),
            HookSpec(SASL2_SUCCESS, self.on_sasl2_success),
            HookSpec(USER_SEND_XMLEL, self.on_xmlel),
            HookSpec(C2S_PREPROCESSING_HOOK, self.on_client_stanza, priority=1),
            HookSpec(XMPP_PRESEND_ELEMENT, self.on_presend, PRESEND_PRIORITY),
            HookSpec(USER_SOCKET_CLOSED, self.on_socket_closed),
            HookSpec(USER_TERMINATE, self.on_terminate),
            HookSpec(REROUTE_UNACKED_MESSAGES, self.on_reroute),
        )

    async def start(self) -> None:
        self.ctx.sessions.takeover_handler = self.remote.hand_off
        if self.config.stale_h.enabled:
            self._pruner = self.ctx.spawn(self._prune_loop(), name="mod_stream_management stale_h")

    async def stop(self) -> None:
        if self.ctx.sessions.takeover_handler == self.remote.hand_off:
            self.ctx.sessions.takeover_handler = None
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner

    def sm_state(self, session: C2SSession) -> SmState | None:
        state: SmState | None = session.state(KEY).get("sm")
        return state

    # -- features ---------------------------------------------------------------------------
    async def on_stream_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        if self.sm_state(params["session"]) is None:
            acc.append(stanzas.feature())
        return None

    async def on_sasl2_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        acc.append(stanzas.feature())
        return None

    async def on_bind2_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        acc.append(stanzas.bind2_feature())
        return None

    # -- nonzas -------------------------------------------------------------------------------
    async def on_xmlel(self, el: Element, params: dict[str, Any]) -> object:
        if el.xmlns != ns.SM:
            return None
        session: C2SSession = params["session"]
        sm = self.sm_state(session)
        if el.name == "r":
            if sm is not None:
                session.send(stanzas.ack(sm.handled))
        elif el.name == "a":
            if sm is not None:
                self._ack(session, sm, stanzas.parse_h(el.attrs.get("h")))
        elif el.name == "enable":
            await self._enable(session, el, session.send)
        elif el.name == "resume":
            await self._resume(session, el, session.send)
        else:
            session.send(stanzas.failed("feature-not-implemented"))
        return STOP

    async def on_bind2_enable(self, acc: Element, params: dict[str, Any]) -> object:
        enable = acc.find("enable", ns.SM)
        if enable is not None:
            await self._enable(params["session"], enable, params["results"].append)
        return None

    async def on_sasl2_success(self, acc: Element, params: dict[str, Any]) -> object:
        resume = acc.find("resume", ns.SM)
        if resume is not None:
            await self._resume(params["session"], resume, params["results"].append)
        return None

    def _ack(self, session: C2SSession, sm: SmState, h: int | None) -> None:
        if h is None:
            session.close("policy-violation", "invalid h attribute")
            return
        first = sm.first_seq
        try:
            acked = sm.ack(h)
        except HandledCountTooHigh as exc:
            session.fail(stanzas.HandledCountTooHighError(exc.h, exc.sent))
            return
        if sm.smid is not None:
            self._release(session.sid, first, acked)

    async def _enable(self, session: C2SSession, el: Element, reply: Reply) -> None:
        if not session.bound:
            reply(stanzas.failed("unexpected-request"))  # XEP-0198 §3: bind first
            return
        if self.sm_state(session) is not None:
            session.close("policy-violation", "stream management is already enabled")
            return
        config = self.config
        sm = self.new_state()
        if el.attrs.get("resume") in ("true", "1") and config.buffer:
            sm.smid = make_smid(self.ctx.node, secrets.token_bytes(NONCE_BYTES))
            entry = SmEntry(sm.smid, session.sid, session.jid, self.ctx.node)
            await self.table.register(entry)
        session.state(KEY)["sm"] = sm
        reply(stanzas.enabled(sm.smid, config.resume_timeout))

    def new_state(self) -> SmState:
        """Counters and buffer of a stream, as configured."""
        config = self.config
        buffer_max = config.buffer_max if config.buffer else 0
        return SmState(
            buffer_max=None if buffer_max == "infinity" else buffer_max,
            ack_freq=config.ack_freq if config.ack else None,
        )

    # -- resumption ---------------------------------------------------------------------------
    async def _resume(self, session: C2SSession, el: Element, reply: Reply) -> None:
        previd = el.attrs.get("previd", "")
        h = stanzas.parse_h(el.attrs.get("h"))
        owner = session.authenticated
        if not previd or h is None or owner is None:
            reply(stanzas.failed("bad-request"))
            return
        if session.bound:
            reply(stanzas.failed("unexpected-request"))
            return
        entry = self.table.lookup(previd)
        mirrored = True
        if entry is None or entry.jid.bare != owner.bare:
            resumed = False  # someone else's id: indistinguishable from none
        elif entry.node == self.ctx.node:
            old = self.ctx.sessions.local_handle(entry.sid)
            resumed = isinstance(old, C2SSession) and await session.take_over(old)
        else:
            resumed = await self.remote.resume(session, entry)
            mirrored = False  # the buffer came from the old node: nothing here mirrors it
        if not resumed:
            log.info("sm_resume_failed jid=%s smid=%s", owner, previd)
            reply(stanzas.failed("item-not-found", self._stale_h(previd, owner)))
            return
        sm = self.sm_state(session)
        assert sm is not None
        first = sm.first_seq
        try:
            acked = sm.ack(h)
        except HandledCountTooHigh as exc:
            session.fail(stanzas.HandledCountTooHighError(exc.h, exc.sent))
            return
        resend = sm.take_unacked_stamped()
        if mirrored:
            self._release(session.sid, first, [*acked, *(el for el, _ in resend)])
        reply(stanzas.resumed(previd, sm.handled))
        domain = session.jid.domain
        for stanza, stamp in resend:
            copy = with_delay(stanza, domain, stamp)
            sm.restamp[id(copy)] = stamp
            session.send(copy)

    def _stale_h(self, smid: str, owner: Jid) -> int | None:
        stale = self.table.stale_h(smid)
        return stale.h if stale is not None and stale.owner == owner.bare else None

    def _release(self, sid: str, first_seq: int, stanzas: list[Element]) -> None:
        """Buffered stanzas left the buffer: drop the mirrored copies of the messages."""
        if self.mirror is not None and stanzas:
            self.mirror.released(
                sid, [first_seq + i for i, el in enumerate(stanzas) if el.name == "message"]
            )

    # -- counting -----------------------------------------------------------------------------
    async def on_client_stanza(self, acc: Element, params: dict[str, Any]) -> object:
        sm = self.sm_state(params["session"])
        if sm is not None:
            sm.count_in()
        return None

    async def on_presend(self, acc: Element, params: dict[str, Any]) -> object:
        session: C2SSession = params["session"]
        sm = self.sm_state(session)
        if sm is None or acc.name not in _STANZAS or acc.xmlns not in (ns.CLIENT, ""):
            return None
        now = self.ctx.clock.now()
        sm.count_out(acc, now)
        mirror = self.mirror
        if mirror is not None and sm.smid is not None and acc.name == "message" and sm.unacked:
            mirror.buffered(session.sid, sm.out_seq - 1, session.jid, acc, now)
        if sm.over_limit():
            session.close("resource-constraint", "too many unacknowledged stanzas")
        elif sm.wants_ack() and session.fsm is State.SESSION_ESTABLISHED:
            session.send(stanzas.request())
        return None

    # -- detaching and ending -------------------------------------------------------------------
    async def on_socket_closed(self, acc: object, params: dict[str, Any]) -> object:
        session: C2SSession = params["session"]
        sm = self.sm_state(session)
        if sm is not None and sm.smid is not None:
            session.detach(self.config.resume_timeout)
        return None

    async def on_terminate(self, acc: object, params: dict[str, Any]) -> object:
        """The session ends unresumed: retire its SM-ID while the session still counts as
        resumable. A concurrent ``<resume/>`` then finds the id and the session (which
        answers it only once it has ended, so after this) or the stale h, never neither.
        The stale h is written before the id is deleted: in a cluster each is a replicated
        write, and every node sees them in this order."""
        sm = self.sm_state(params["session"])
        if sm is None or sm.smid is None:
            return None
        if self.config.stale_h.enabled:
            jid: Jid = params["jid"]
            stale = StaleH(sm.handled, jid.bare, self.ctx.clock.now())
            await self.table.put_stale_h(sm.smid, stale)
        await self.table.unregister(sm.smid)
        return None

    async def on_reroute(self, acc: object, params: dict[str, Any]) -> object:
        session: C2SSession = params["session"]
        sm = session.state(KEY).pop("sm", None)
        if not isinstance(sm, SmState):
            return None
        jid: Jid = params["jid"]
        first = sm.first_seq
        unacked = sm.take_unacked()
        if sm.smid is not None:
            self._release(params["sid"], first, unacked)
        for stanza in unacked:
            await self.reroute(stanza, jid)
        return None

    async def reroute(self, el: Element, owner: Jid) -> None:
        """Route an unacknowledged stanza again: its recipient is gone, so the router picks
        another resource, offline storage or an error for the sender."""
        try:
            frm = Jid.parse(el.attrs["from"]) if "from" in el.attrs else Jid("", owner.domain)
            to = Jid.parse(el.attrs["to"]) if "to" in el.attrs else owner
        except JidError:
            return
        copy = el.copy()
        host = to.domain if to.domain in self.ctx.hosts else owner.domain
        await self.ctx.route_acc(Acc(copy, frm, to, host_type=host, timestamp=self.ctx.clock.now()))

    async def _prune_loop(self) -> None:
        stale = self.config.stale_h
        while True:
            await asyncio.sleep(stale.repeat_after)
            try:
                await self.table.prune_stale_h(self.ctx.clock.now() - stale.geriatric)
            except Exception:
                log.exception("sm_stale_h_prune_failed")
