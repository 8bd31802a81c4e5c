"""`C2SSession`: one client connection as an explicit state machine (RFC 6120 §4-7).

One task per connection consumes the session's mailbox in order: chunks read from the
transport, stanzas routed to the client, and control messages (kick, shutdown, flush,
hand-over). The transport pushes its chunks into the mailbox (no reader task: c2s/transport.py)
and the session pauses it while a chunk waits (`READ_AHEAD`), so a negotiation step
(STARTTLS, a stream restart) always completes before the next bytes are looked at. Stanzas
routed to the session are queued without waiting; a session that falls `max_mailbox` stanzas
behind, or whose client does not read what it is sent, is closed with a clear reason rather
than buffered without bound. Authentication (SASL, SASL2, Bind 2) lives in `auth.py`.

Stream management (XEP-0198) needs two things only the session can do, both driven by hooks:

- *detach*: when the transport is lost without a closing tag, USER_SOCKET_CLOSED lets a module
  call `detach(seconds)`; the session then stays registered in RESUME_SESSION, processing its
  mailbox with nothing to write to, until it is resumed, kicked or the time is up.
- *hand over*: a new connection that resumes the session calls `take_over(old)`. The old
  session, in its own task and mailbox order, moves its state (record, presence, per-module
  state with the SM buffer) and the stanzas still queued for it to the new session, and swaps
  the session manager's handle in the same synchronous step, so no stanza routed meanwhile can
  overtake or miss them. The sid, and so the router's view, stays the same.
- *across nodes*: `hand_off(swap)` ends the old session quietly for a resumption on another
  node (the stanzas still queued for it go through its client path first, so stream
  management buffers them; `swap` moves its routing away in the same step), and `adopt` lets
  the new connection continue it there under a new sid. The stream management module's
  `remote` part drives both.

This file is longer than our usual 400 lines on purpose: every state transition of the
machine is here (STYLE §2); authentication's steps live in `auth.py`.

The hard parts: every exit path (client close, socket error, stream error, kick, shutdown,
resumption timeout) goes through `_terminate`, which unregisters the session, runs the
disconnect hooks, lets modules re-route what the client never acknowledged
(REROUTE_UNACKED_MESSAGES) and re-routes stanzas still queued, so nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.acc import Acc
from ..core.hooks import (
    C2S_PREPROCESSING_HOOK,
    C2S_STREAM_FEATURES,
    REROUTE_UNACKED_MESSAGES,
    SM_REGISTER_CONNECTION,
    SM_REMOVE_CONNECTION,
    UNSET_PRESENCE,
    USER_RECEIVE_PACKET,
    USER_SEND_IQ,
    USER_SEND_MESSAGE,
    USER_SEND_PACKET,
    USER_SEND_PRESENCE,
    USER_SEND_XMLEL,
    USER_SOCKET_CLOSED,
    USER_TERMINATE,
    XMPP_PRESEND_ELEMENT,
    Hook,
)
from ..core.iq import iq_result
from ..core.sessions import SessionRecord
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError, StreamError, error_reply
from ..xmpp.jid import Jid, JidError, prep_resource
from ..xmpp.sasl.channel_binding import PREFERENCE as CB_PREFERENCE
from ..xmpp.stream import (
    STREAM_CLOSE,
    WS_CLOSE,
    StreamClosed,
    StreamOpened,
    XmlStream,
    stream_header,
    ws_open,
)
from . import stanzas
from .auth import Authenticator
from .node import C2SNode
from .settings import C2SSettings
from .states import State
from .transport import Transport

log = logging.getLogger(__name__)

_SEND_HOOKS: dict[str, Hook] = {
    "message": USER_SEND_MESSAGE,
    "presence": USER_SEND_PRESENCE,
    "iq": USER_SEND_IQ,
}
_STANZAS = frozenset({"message", "presence", "iq"})
SHAPER_BURST = 2.0
"""Seconds of traffic a shaped client may send at once before being slowed to its rate."""
READ_AHEAD = 1
"""Chunks a bound, unshaped session lets the transport queue in its mailbox before reading
pauses until it has processed them (flow control). Before binding reading pauses at each
chunk: STARTTLS and stream restarts change how the next bytes must be read. More than 1
measured no gain when a reader task fed the mailbox (the session kept up with its reader:
in the messages bench no chunk ever waited behind another) and lets the client's next
chunk overtake stanzas the previous one routed to this session (an answer to its own
presence probe), so 1 (docs/decisions.md, issue 6)."""
MAX_BATCH = 16384
"""Bytes of output gathered from consecutive mailbox items before they are written at once:
one TLS record's worth, which also bounds how long the first of a backlog of stanzas waits."""


class _Control:
    """A control message in the mailbox: kick (close with a condition) or flush requests."""

    __slots__ = ("condition", "kind", "text")

    def __init__(self, kind: str, condition: str = "", text: str | None = None) -> None:
        self.kind, self.condition, self.text = kind, condition, text


@dataclass(frozen=True, slots=True)
class Handover:
    """What a resumed session takes from the one it replaces."""

    jid: Jid
    presence: Element | None
    mod_state: dict[str, dict[str, Any]]
    record: SessionRecord | None = None
    """The old session's record (`hand_off` only)."""


HandOffSwap = Callable[[Handover], Awaitable[None]]
"""Run by `hand_off` in the old session's task once it is quiet: move its routing away."""


@dataclass(slots=True)
class _HandoverRequest:
    """Put in the old session's mailbox by `take_over` (or `hand_off`: `new` is None)."""

    new: C2SSession | None
    record: SessionRecord
    """The old record with the new connection's info (same sid)."""
    reply: asyncio.Future[Handover | None] = field(repr=False)
    swap: HandOffSwap | None = None
    started: bool = False


_Item = bytes | Acc | _Control | _HandoverRequest


class _Mailbox:
    """The session's FIFO, consumed by its task alone: what the session needs of an
    `asyncio.Queue`, without the Queue's three deques and Event (3 KiB for every connection,
    idle ones included). The deque exists only while something is queued."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[_Item] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: _Item) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def get_nowait(self) -> _Item:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def wait(self) -> asyncio.Future[None]:
        """Done once an item is queued (the mailbox is empty now). A future, not a
        coroutine: nothing is made per item, and a waiting session keeps no extra frame."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter


class C2SSession:
    """A client's stream, from TCP accept to close. Also the `ClientSession` hooks see."""

    # Slots: one of these lives as long as its connection (a dict would be ~1 KiB more each).
    __slots__ = (
        "_allowance_at",
        "_client_stanzas",
        "_close_request",
        "_detach_for",
        "_handed_over",
        "_header_sent",
        "_hold_requests",
        "_in_step",
        "_input_seen",
        "_jid",
        "_jid_str",
        "_mailbox",
        "_max_rate",
        "_mod_state",
        "_out",
        "_out_size",
        "_params",
        "_parser",
        "_presence",
        "_record",
        "_requests",
        "_routed",
        "_state_timer",
        "_transport_lost",
        "_unprocessed",
        "auth",
        "authenticated",
        "fsm",
        "host",
        "node",
        "settings",
        "stream_id",
        "transport",
        "user_agent_id",
    )

    def __init__(self, node: C2SNode, settings: C2SSettings, transport: Transport) -> None:
        self.node = node
        self.settings = settings
        self.transport = transport
        self.fsm = State.WAIT_FOR_STREAM
        self.stream_id = ""
        self.host = ""
        self.authenticated: Jid | None = None
        """The authenticated bare JID (once SASL or SASL2 succeeded)."""
        self.user_agent_id: str | None = None
        """The SASL2 ``<user-agent id>`` (XEP-0388), when the client sent one."""
        self._jid: Jid | None = None
        self._jid_str = ""
        self._record: SessionRecord | None = None
        self._presence: Element | None = None
        self._mod_state: dict[str, dict[str, Any]] = {}
        self._parser = self._new_parser()
        self._header_sent = False
        self._out: list[bytes] = []
        """Output of the current step(s), written as one chunk by `_flush_out` (one TLS record
        and one send instead of one per element)."""
        self._out_size = 0
        self._mailbox = _Mailbox()
        self._routed = 0
        self._unprocessed = 0
        """Chunks the transport put in the mailbox that `_on_data` has not finished."""
        self._allowance_at = 0.0
        """The shaper's token bucket: when the client is back under its rate (loop time)."""
        self._state_timer: asyncio.TimerHandle | None = None
        self._close_request: StreamError | None = None
        self._params: dict[str, Any] = {"session": self}
        self._max_rate = 0
        self._requests: list[Element] = []
        self._hold_requests = False
        self._in_step = False
        self._transport_lost = False
        self._detach_for: float | None = None
        self._handed_over = False
        self._input_seen = False
        """Input arrived since the last `idle_tick` (the hibernation sweep)."""
        self._client_stanzas = 0
        self.auth = Authenticator(self)

    # -- ClientSession (what hooks see) ---------------------------------------------------
    @property
    def jid(self) -> Jid:
        assert self._jid is not None, "session not bound"
        return self._jid

    @property
    def sid(self) -> str:
        return self._record.sid if self._record is not None else ""

    @property
    def host_type(self) -> str:
        return self.host

    @property
    def record(self) -> SessionRecord:
        assert self._record is not None, "session not bound"
        return self._record

    @property
    def bound(self) -> bool:
        """True once a resource is bound (or a session resumed), until the end."""
        return self._record is not None and self.fsm in (
            State.SESSION_ESTABLISHED,
            State.RESUME_SESSION,
        )

    @property
    def available(self) -> bool:
        return self._presence is not None

    @property
    def last_presence(self) -> Element | None:
        return self._presence

    @property
    def peer(self) -> tuple[str, int]:
        return self.transport.peer

    @property
    def client_stanzas(self) -> int:
        return self._client_stanzas

    def state(self, module: str) -> dict[str, Any]:
        # Not setdefault(module, {}): that builds a dict on every call (several per stanza).
        state = self._mod_state.get(module)
        if state is None:
            state = self._mod_state[module] = {}
        return state

    def send(self, element: Element) -> None:
        """Queue an element for the client, written when the current step ends through
        `send_element` (so XMPP_PRESEND_ELEMENT sees it: stream management counts it)."""
        self._requests.append(element)
        if not self._in_step:
            self._mailbox.put_nowait(_Control("flush"))

    def close(self, condition: str, text: str | None = None) -> None:
        self._close_request = StreamError(condition, text)

    def fail(self, error: StreamError) -> None:
        """Close with this stream error once the current step is done."""
        self._close_request = error

    def detach(self, seconds: float) -> None:
        """From USER_SOCKET_CLOSED: keep this session for a resumption for `seconds`."""
        self._detach_for = seconds

    async def set_presence(self, presence: Element | None) -> None:
        self._presence = presence
        if self._record is None:
            return
        priority: int | None = None
        if presence is not None:
            priority = _priority(presence)
        # Stored with the record so that a probe answered on another node carries it.
        self._record = await self.node.sessions.set_presence(self._record, priority, presence)

    # -- SessionHandle (what the session manager sees) ------------------------------------
    def deliver(self, acc: Acc) -> bool:
        if self.fsm is State.CLOSED:
            return False
        if self._routed >= self.settings.max_mailbox:
            self.kick("policy-violation", "too many stanzas queued for this client")
            return False
        self._routed += 1
        self._mailbox.put_nowait(acc)
        return True

    def kick(self, condition: str, text: str | None = None) -> None:
        self._mailbox.put_nowait(_Control("kick", condition, text))

    def shutdown(self) -> None:
        self._mailbox.put_nowait(_Control("kick", "system-shutdown"))

    # -- the task ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it closes. Never raises for a misbehaving peer."""
        self.node.live.add(self)
        reason = "closed"
        try:
            reason = await self._serve_connection()
            if self._detach_for is not None and not self._handed_over:
                reason = await self._serve_detached(self._detach_for)
        except Exception:
            log.exception("c2s_session_crashed jid=%s", self._jid_str)
            reason = "internal-server-error"
        finally:
            try:
                if self._handed_over:
                    self._flush_out()
                    self.transport.close()
                    log.debug("c2s_session_handed_over jid=%s", self._jid_str)
                else:
                    async with self.node.endings:  # a mass disconnect ends a few at a time
                        await self._terminate(reason)
            finally:
                self._release()

    def _release(self) -> None:
        """Break the ended session's own reference cycles (the parser's handlers, the hook
        params, the authenticator, a raised close request whose traceback holds this
        session's frames), so that reference counting frees it with its transport and TLS
        objects at once instead of leaving them to the cyclic garbage collector."""
        self._parser.close()
        self._params.clear()
        self._close_request = None
        del self.auth

    async def _serve_connection(self) -> str:
        """Serve while there is a transport; then decide whether to detach."""
        self.transport.start_reading(self._on_input)
        reason = "closed"
        try:
            reason = await self._serve_items()
        except StreamError as exc:
            reason = exc.condition
            self._send_stream_error(exc)
        except (ConnectionError, OSError) as exc:
            reason = f"socket: {exc}"
            self._transport_lost = True
        except Exception:
            log.exception("c2s_session_crashed jid=%s", self._jid_str)
            reason = "internal-server-error"
            self._send_stream_error(StreamError("internal-server-error"))
        finally:
            if self._state_timer is not None:
                self._state_timer.cancel()
                self._state_timer = None
            with contextlib.suppress(ConnectionError, OSError):
                self._flush_out()  # the last step's output (a closing tag ...)
            self.transport.pause_reading()  # what comes now is not news
        if self._transport_lost and self.fsm is State.SESSION_ESTABLISHED:
            params = {"session": self, "reason": reason}
            await self.node.hooks.run(USER_SOCKET_CLOSED, self.host, None, params)
        return reason

    def _on_input(self, data: bytes) -> None:
        """The transport's sink: queue a chunk (b"" at the end) in the mailbox. Reading pauses
        while `_read_ahead()` chunks wait, until `_read_on`."""
        self._unprocessed += 1
        self._mailbox.put_nowait(data)
        if data and self._unprocessed >= self._read_ahead():
            self.transport.pause_reading()

    def _read_ahead(self) -> int:
        # A bound session may read a few chunks ahead (one wake-up per chunk fewer); a
        # negotiating or shaped one waits until the session has acted on each chunk.
        if self.fsm is State.SESSION_ESTABLISHED and not self._max_rate:
            return READ_AHEAD
        return 1

    def _read_on(self, size: int) -> None:
        """A chunk of `size` bytes is processed: resume reading, unless `READ_AHEAD` chunks
        still wait or the shaper holds the client back."""
        if self._max_rate:
            # Token bucket with a burst of SHAPER_BURST seconds: once the client is over
            # its rate, reading stays paused until it is back under it. The timer needs no
            # cancelling: resuming a closed transport does nothing.
            loop = asyncio.get_running_loop()
            now = loop.time()
            allowance_at = max(self._allowance_at, now - SHAPER_BURST) + size / self._max_rate
            self._allowance_at = allowance_at
            if allowance_at - now > 0.01:
                loop.call_later(allowance_at - now, self.transport.resume_reading)
                return
        if self._unprocessed < self._read_ahead():
            self.transport.resume_reading()

    def _arm_state_timer(self) -> _Control:
        """Each negotiation state must end within state_timeout: a timer puts this state's own
        marker in the mailbox (a stale marker of an earlier state is ignored). Cheaper than a
        wait_for, which makes a task, per mailbox item."""
        marker = _Control("timeout")
        loop = asyncio.get_running_loop()
        timeout = self.settings.state_timeout
        self._state_timer = loop.call_later(timeout, self._mailbox.put_nowait, marker)
        return marker

    async def _serve_items(self) -> str:
        marker = self._arm_state_timer()
        mailbox = self._mailbox
        while True:
            if mailbox.empty():
                await mailbox.wait()
            item = mailbox.get_nowait()
            if isinstance(item, _Control) and item.kind == "timeout":
                if item is marker and self.fsm is not State.SESSION_ESTABLISHED:
                    raise StreamError("connection-timeout", "negotiation took too long")
                continue
            self._in_step = True
            try:
                if isinstance(item, bytes):
                    if not item:
                        self._transport_lost = True
                        return "client closed the connection"
                    before = self.fsm
                    closed = await self._on_data(item)
                    self._unprocessed -= 1
                    if closed:
                        self._write_raw(WS_CLOSE if self.transport.framed else STREAM_CLOSE)
                        return "client closed the stream"
                    if self.fsm is not before and self._state_timer is not None:
                        self._state_timer.cancel()
                        self._state_timer = None
                        if self.fsm is not State.SESSION_ESTABLISHED:
                            marker = self._arm_state_timer()
                elif isinstance(item, Acc):
                    self._routed -= 1
                    await self._on_routed(item)
                elif isinstance(item, _HandoverRequest):
                    if _begin(item):
                        self._send_stream_error(
                            StreamError("conflict", "session resumed elsewhere")
                        )
                        await self._hand_over(item)
                        return "resumed on another connection"
                elif item.kind == "kick":
                    raise StreamError(item.condition, item.text)
                await self._flush_requests()
            finally:
                self._in_step = False
            # Routed stanzas waiting right behind this one go out in the same write.
            if (
                self._out_size >= MAX_BATCH
                or self.fsm is not State.SESSION_ESTABLISHED
                or self._mailbox.empty()
            ):
                self._flush_out()
            if self._close_request is not None:
                raise self._close_request
            if self.transport.buffered() > self.settings.max_output_buffer:
                raise StreamError("policy-violation", "client does not read its stream")
            if isinstance(item, bytes):
                # After the flush above: the next chunk must not hold back this one's answers.
                self._read_on(len(item))

    async def _serve_detached(self, seconds: float) -> str:
        """RESUME_SESSION: no transport; process routed stanzas until resumed or timed out."""
        self.fsm = State.RESUME_SESSION
        self._flush_out()  # drops it: no transport any more
        self.transport.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        log.debug("c2s_session_detached jid=%s timeout=%s", self._jid_str, seconds)
        mailbox = self._mailbox
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return "not resumed in time"  # what is still queued is re-routed
            if mailbox.empty():
                try:
                    await asyncio.wait_for(mailbox.wait(), left)
                except TimeoutError:
                    return "not resumed in time"
            item = mailbox.get_nowait()
            self._in_step = True
            try:
                if isinstance(item, Acc):
                    self._routed -= 1
                    await self._on_routed(item)
                elif isinstance(item, _HandoverRequest):
                    if _begin(item):
                        await self._hand_over(item)
                        return "resumed"
                elif isinstance(item, _Control) and item.kind == "kick":
                    return item.condition
                await self._flush_requests()  # bytes left from the transport are ignored
            finally:
                self._in_step = False
            if self._close_request is not None:
                return f"{self._close_request.condition}: {self._close_request.text}"

    async def _on_data(self, data: bytes) -> bool:
        """Feed bytes to the parser and act on each event; True when the client closed."""
        self._input_seen = True
        for event in self._parser.feed(data):
            if isinstance(event, Element):
                await self._on_element(event)
                # Answers go out before the next element is looked at: stream management's
                # counters must see them in the order the client does.
                await self._flush_requests()
            elif isinstance(event, StreamOpened):
                await self._on_stream_open(event)
            else:
                assert isinstance(event, StreamClosed)
                return True
            if self._close_request is not None or self.fsm is State.WAIT_FOR_STREAM:
                break  # a stream restart: the rest of this chunk belongs to no stream
        return False

    # -- hibernation --------------------------------------------------------------------------
    def idle_tick(self) -> bool:
        """The node's periodic sweep: a session that got no input since the previous sweep
        drops its XML parser (rebuilt by the next input; output needs none). True when it
        did. Only between steps, with nothing queued and no partial stanza."""
        if self._input_seen:
            self._input_seen = False
            return False
        if self._in_step or not self._mailbox.empty() or self.fsm is State.CLOSED:
            return False
        return self._parser.release()

    # -- resumption (XEP-0198 hand-over) ----------------------------------------------------
    async def take_over(self, old: C2SSession) -> bool:
        """Become `old` (same sid, state, queued stanzas) on this connection; False when `old`
        ended first. Runs in this session's task while it negotiates."""
        if old is self or old.fsm is State.CLOSED or old._jid is None or old._record is None:
            return False
        if self.authenticated is None or old._jid.bare != self.authenticated.bare:
            return False  # only the owner may resume a session
        ip, port = self.transport.peer
        info = dict(old._record.info)
        info.update(ip=ip, port=port, connection="c2s_tls" if self.transport.secure else "c2s")
        record = replace(old._record, info=info)
        reply: asyncio.Future[Handover | None] = asyncio.get_running_loop().create_future()
        old._mailbox.put_nowait(_HandoverRequest(self, record, reply))
        handover = await reply
        if handover is None:
            return False
        self._jid, self._jid_str = handover.jid, str(handover.jid)
        self._record = record
        self._presence = handover.presence
        self._mod_state = handover.mod_state
        self.fsm = State.SESSION_ESTABLISHED
        return True

    async def _hand_over(self, request: _HandoverRequest) -> None:
        """In the old session's task: give everything to the new session, then end quietly."""
        new = request.new
        if new is None:
            await self._hand_off(request)
            return
        assert self._jid is not None and self._record is not None
        self._handed_over = True
        self.fsm = State.CLOSED
        self.node.live.discard(self)
        # Queued stanzas go first into the new mailbox; `SessionManager.open` swaps the handle
        # before its first await (the sid has no other session to replace), so nothing
        # routed after the swap can get ahead of them, and nothing is routed to us after it.
        while not self._mailbox.empty():
            item = self._mailbox.get_nowait()
            if isinstance(item, Acc):
                new.deliver(item)
            elif isinstance(item, _HandoverRequest) and not item.reply.done():
                item.reply.set_result(None)
        self._routed = 0
        await self.node.sessions.open(request.record, new)
        request.reply.set_result(Handover(self._jid, self._presence, self._mod_state))
        self._record = None

    # -- resumption on another node (XEP-0198 across the cluster) -----------------------------
    async def hand_off(self, swap: HandOffSwap, timeout: float) -> Handover | None:
        """End this session quietly for a resumption on another node and return its state.

        In mailbox order, the session stops writing, hands the stanzas still queued for it to
        its own client path (so stream management buffers them), then calls `swap` (which
        moves its routing away) and ends without unavailable presence or re-routing. None
        when the session ended first, or did not get to the request within `timeout`."""
        if self.fsm is State.CLOSED or self._record is None or self._handed_over:
            return None
        reply: asyncio.Future[Handover | None] = asyncio.get_running_loop().create_future()
        request = _HandoverRequest(None, self._record, reply, swap)
        self._mailbox.put_nowait(request)
        await asyncio.wait([reply], timeout=timeout)
        if not reply.done() and not request.started:
            reply.cancel()  # the session will skip it (`_begin`)
            return None
        return await reply

    async def _hand_off(self, request: _HandoverRequest) -> None:
        assert self._jid is not None and self._record is not None and request.swap is not None
        self.fsm = State.RESUME_SESSION  # nothing more is written to the old transport
        self._close_request = None
        try:
            while True:
                await self._flush_requests()
                if self._mailbox.empty():
                    break
                item = self._mailbox.get_nowait()
                if isinstance(item, Acc):
                    self._routed -= 1
                    await self._on_routed(item)
                elif isinstance(item, _HandoverRequest) and not item.reply.done():
                    item.reply.set_result(None)
            # No await between the last empty mailbox and the swap: whatever is routed to
            # this sid from now on is forwarded by the session manager.
            self._handed_over = True
            self.fsm = State.CLOSED
            self.node.live.discard(self)
            handover = Handover(self._jid, self._presence, self._mod_state, self._record)
            await request.swap(handover)
        except BaseException:
            if not request.reply.done():
                request.reply.set_result(None)
            raise
        request.reply.set_result(handover)
        self._record = None

    async def adopt(
        self,
        record: SessionRecord,
        presence: Element | None,
        mod_state: dict[str, dict[str, Any]],
    ) -> None:
        """Continue, as `record`, a session that ran on another node (XEP-0198 resumption):
        bound, with its presence and module state, without SM_REGISTER_CONNECTION or any
        presence broadcast (for its contacts nothing changed)."""
        self._jid, self._jid_str, self._record = record.jid, str(record.jid), record
        self._presence = presence
        self._mod_state = mod_state
        await self.node.sessions.open(record, self)
        self.fsm = State.SESSION_ESTABLISHED

    # -- stream open and features -------------------------------------------------------------
    async def _on_stream_open(self, event: StreamOpened) -> None:
        if self.fsm is not State.WAIT_FOR_STREAM:
            raise StreamError("not-well-formed", "unexpected stream header")
        attrs = event.attrs
        self.stream_id = self.node.random(8).hex()
        to = attrs.get("to", "")
        try:
            host = Jid.parse(to).domain if to else ""
        except JidError:
            host = ""
        if not self.host:
            self.host = host if host in self.settings.hosts else next(iter(self.settings.hosts))
        self._send_header(attrs.get("xml:lang"))
        if host not in self.settings.hosts or (self.authenticated and host != self.host):
            raise StreamError("host-unknown", f"this server does not serve {to!r}")
        if event.content_ns != ns.CLIENT and not self.transport.framed:
            raise StreamError("invalid-namespace", "content namespace must be jabber:client")
        version = attrs.get("version", "")
        if not version.startswith("1."):
            raise StreamError("unsupported-version", "this server speaks XMPP 1.0")
        if self.authenticated is None:
            self._write_raw(await self._pre_auth_features())
            self.fsm = State.WAIT_FOR_FEATURE_BEFORE_AUTH
        else:
            self._write_raw(await self._post_sasl_features())
            self.fsm = State.WAIT_FOR_FEATURE_AFTER_AUTH

    def _send_header(self, lang: str | None) -> None:
        if self.transport.framed:
            self._write_raw(ws_open(from_=self.host, id=self.stream_id))
        else:
            self._write_raw(stream_header(from_=self.host, id=self.stream_id))
        self._header_sent = True

    async def _pre_auth_features(self) -> bytes:
        """The serialized features of an unauthenticated stream, built once per kind of
        connection: they depend only on the listener's settings, the host, TLS and the
        channel-binding types (SASL2_STREAM_FEATURES' contract), and on the hook handlers."""
        t = self.transport
        key = (self.host, t.secure, t.can_starttls, t.framed, tuple(t.channel_bindings()))
        return await self._cached_features(key, self.auth.pre_auth_features)

    async def _post_sasl_features(self) -> bytes:
        """The serialized features of the stream restarted after SASL, built once per host and
        listener while no module holds state for this session (C2S_STREAM_FEATURES' contract:
        the result then depends on the host and the hook handlers only)."""
        if any(self._mod_state.values()):
            return _stream_level(
                stanzas.features(await self.post_auth_features()), declare=self.transport.framed
            )
        key = ("post-sasl", self.host, self.transport.framed, self.bound)
        return await self._cached_features(key, self.post_auth_features)

    async def _cached_features(
        self, key: tuple[object, ...], build: Callable[[], Awaitable[list[Element]]]
    ) -> bytes:
        """`build()`'s features serialized at stream level, cached in the node under `key` plus
        the listener's settings and the hook handlers' generation."""
        key += (id(self.settings), self.node.hooks.generation)
        cache = self.node.features_cache
        hit = cache.get(key)
        if hit is not None and hit[0] is self.settings:
            return hit[1]
        data = _stream_level(stanzas.features(await build()), declare=self.transport.framed)
        if len(cache) >= 64:
            cache.clear()  # stale generations: start over
        cache[key] = (self.settings, data)
        return data

    def tls_required_missing(self) -> bool:
        return self.settings.tls_mode == "starttls_required" and not self.transport.secure

    async def post_auth_features(self) -> list[Element]:
        """Features of an authenticated stream: bind (until bound), then the modules' own."""
        out = [] if self.bound else [stanzas.bind_feature(), stanzas.session_feature()]
        await self.node.hooks.run(C2S_STREAM_FEATURES, self.host, out, self._params)
        return out

    # -- elements by state ------------------------------------------------------------------
    async def _on_element(self, el: Element) -> None:
        state = self.fsm
        if state is State.SESSION_ESTABLISHED:
            await self._on_stanza(el)
        elif state is State.WAIT_FOR_FEATURE_BEFORE_AUTH:
            await self._before_auth(el)
        elif state is State.WAIT_FOR_SASL_RESPONSE:
            await self.auth.sasl_response(el)
        elif state is State.WAIT_FOR_SASL2_RESPONSE:
            await self.auth.sasl2_response(el)
        elif state is State.WAIT_FOR_FEATURE_AFTER_AUTH:
            await self._after_auth(el)
        else:
            raise StreamError("not-well-formed", "element before stream header")

    async def _before_auth(self, el: Element) -> None:
        if el.xmlns == ns.TLS and el.name == "starttls":
            if self.transport.secure or not self.transport.can_starttls:
                raise StreamError("policy-violation", "TLS already negotiated or unavailable")
            self._write_raw(stanzas.PROCEED)
            self._flush_out()  # in the clear, before the handshake
            await self.transport.start_tls()
            self.restart_stream()
            return
        if self.tls_required_missing():
            raise StreamError("policy-violation", "use of STARTTLS required")
        if el.xmlns == ns.SASL and el.name == "auth":
            await self.auth.sasl_auth(el)
            return
        if el.xmlns == ns.SASL2 and el.name == "authenticate":
            await self.auth.sasl2_authenticate(el)
            return
        if el.xmlns in (ns.SASL, ns.SASL2) and el.name == "abort":
            self.auth.abort(el)
            return
        if (
            self.settings.register_enabled
            and el.name == "iq"
            and el.xmlns == ns.CLIENT
            and el.find("query", ns.REGISTER) is not None
        ):
            await self._preauth_register(el)
            return
        raise StreamError("not-authorized", "authenticate first")

    async def _preauth_register(self, iq: Element) -> None:
        server = Jid("", self.host)
        anon = Jid("", self.host, f"preauth-{self.stream_id}")
        acc = Acc(iq, anon, server, host_type=self.host, timestamp=self.node.clock.now())
        acc.scratch["preauth"] = True
        acc.scratch["peer_ip"] = self.transport.peer[0]
        reply = await self.node.iq.handle("local", acc)
        if reply is not None:
            reply.attrs.pop("to", None)
            reply.attrs.pop("from", None)
            self.write(reply)

    def authenticated_as(self, jid: Jid) -> None:
        """SASL or SASL2 succeeded: from now on the stream belongs to `jid`."""
        self.authenticated = jid
        self._max_rate = self._shaper_rate(jid)

    def _shaper_rate(self, jid: Jid) -> int:
        rule = self.settings.shaper_rule
        if rule == "none":
            return 0
        if rule in self.node.shapers:
            return self.node.shapers[rule]
        name = self.node.access(rule, jid, self.transport.peer[0])
        return self.node.shapers.get(str(name), 0)

    def restart_stream(self) -> None:
        self._parser.close()
        self._parser = self._new_parser()
        self.fsm = State.WAIT_FOR_STREAM

    def _new_parser(self) -> XmlStream:
        return XmlStream(
            max_stanza_size=self.settings.max_stanza_size,
            max_depth=self.settings.max_depth,
            framed=self.transport.framed,
        )

    async def _after_auth(self, el: Element) -> None:
        if el.name != "iq" or el.xmlns != ns.CLIENT:
            # Stream management's <resume/> (XEP-0198) comes here, before binding.
            params = {"session": self}
            if await self.node.hooks.run(USER_SEND_XMLEL, self.host, el, params):
                return
            raise StreamError("not-authorized", "bind a resource first")
        bind = el.find("bind", ns.BIND)
        if bind is None or el.attrs.get("type") != "set":
            if el.find("session", ns.SESSION) is not None:
                self.write(error_reply(el, StanzaError("not-allowed", text="bind first")))
                return
            raise StreamError("not-authorized", "bind a resource first")
        requested = bind.find_text("resource")
        try:
            resource = prep_resource(requested) if requested else self.node.random(8).hex()
        except JidError:
            self.write(error_reply(el, StanzaError("bad-request", text="invalid resource")))
            return
        assert self.authenticated is not None
        await self.open_session(self.authenticated.with_resource(resource))
        self.write(stanzas.bind_result(el.attrs.get("id", ""), self._jid_str))

    async def open_session(self, jid: Jid) -> None:
        """Bind `jid`: register with the session manager and run SM_REGISTER_CONNECTION."""
        sessions = self.node.sessions
        ip, port = self.transport.peer
        record = SessionRecord(
            sid=sessions.new_sid(self.node.clock.now()),
            jid=jid,
            node=self.node.node,
            info={
                "ip": ip,
                "port": port,
                "connection": "c2s_tls" if self.transport.secure else "c2s",
                "started": self.node.clock.now(),
            },
        )
        self._jid, self._jid_str, self._record = jid, str(jid), record
        await sessions.open(record, self)
        await self._enforce_max_sessions(jid)
        self.fsm = State.SESSION_ESTABLISHED
        await self.node.hooks.run(
            SM_REGISTER_CONNECTION,
            self.host,
            None,
            {"session": self, "jid": jid, "sid": record.sid},
        )

    async def _enforce_max_sessions(self, jid: Jid) -> None:
        """Past `max_user_sessions`, the oldest of the user's other sessions is replaced."""
        limit = self.node.access("max_user_sessions", jid, self.transport.peer[0])
        if not isinstance(limit, int) or limit <= 0:
            return
        others = [r for r in self.node.sessions.user_sessions(jid) if r.sid != self.sid]
        excess = len(others) + 1 - limit
        for old in sorted(others, key=lambda r: r.info.get("started", 0.0))[: max(0, excess)]:
            await self.node.sessions.kick(old, "conflict")

    # -- established: stanzas from the client ---------------------------------------------
    async def _on_stanza(self, el: Element) -> None:
        if el.name in _STANZAS and el.xmlns == ns.CLIENT:
            hooks = self.node.hooks
            if hooks.has_handlers(C2S_PREPROCESSING_HOOK, self.host) and await hooks.run(
                C2S_PREPROCESSING_HOOK, self.host, el, self._params
            ):
                return
        try:
            await self._process_stanza(el)
        except StreamError:
            raise
        except Exception:
            # A failure behind this stanza (a database outage, a module bug) costs the stanza,
            # not the session: the client hears internal-server-error.
            if self.node.hooks.reraise:
                raise
            log.exception("c2s_stanza_failed jid=%s stanza=%.200s", self._jid_str, el)
            if el.attrs.get("type") != "error":
                self.send(error_reply(el, StanzaError("internal-server-error")))

    async def _process_stanza(self, el: Element) -> None:
        name = el.name
        if name not in _STANZAS or el.xmlns != ns.CLIENT:
            if not await self.node.hooks.run(USER_SEND_XMLEL, self.host, el, self._params):
                raise StreamError("unsupported-stanza-type", f"<{name}/> in {el.xmlns}")
            return
        attrs = el.attrs
        frm = attrs.get("from")
        if frm is not None and frm != self._jid_str:
            try:
                claimed = Jid.parse(frm)
            except JidError:
                raise StreamError("invalid-from") from None
            if claimed != self._jid and claimed != self.jid.bare:
                raise StreamError("invalid-from", "from does not match the session's JID")
        attrs["from"] = self._jid_str
        to = attrs.get("to")
        if to is None:
            to_jid = self.jid.bare
        else:
            try:
                to_jid = Jid.parse(to)
            except JidError:
                if attrs.get("type") != "error":
                    reply = error_reply(el, StanzaError("jid-malformed"))
                    reply.attrs.pop("from", None)
                    self.send(reply)
                return
        if name == "iq" and (to is None or to_jid == self.jid.bare) and _is_session_iq(el):
            self.send(iq_result(el))
            return
        acc = Acc(
            el,
            self.jid,
            to_jid,
            host_type=self.host,
            timestamp=self.node.clock.now(),
            origin_sid=self.sid,
        )
        hooks = self.node.hooks
        params = self._params
        self._client_stanzas += 1
        if hooks.has_handlers(USER_SEND_PACKET, self.host) and await hooks.run(
            USER_SEND_PACKET, self.host, acc, params
        ):
            return
        if await hooks.run(_SEND_HOOKS[name], self.host, acc, params):
            return
        if name == "presence" and to is None:
            # A broadcast presence that no module took: at least keep the session's state.
            ptype = attrs.get("type")
            if ptype is None:
                await self.set_presence(el)
            elif ptype == "unavailable":
                await self.set_presence(None)
            return
        await self.node.router.route(acc)

    # -- established: stanzas for the client ------------------------------------------------
    async def _on_routed(self, acc: Acc) -> None:
        if await self.node.hooks.run(USER_RECEIVE_PACKET, self.host, acc, self._params):
            return
        await self.send_element(acc.element)

    async def send_element(self, el: Element) -> None:
        """Write an element to the client through the pre-send hook (SM, CSI)."""
        hooks = self.node.hooks
        if hooks.has_handlers(XMPP_PRESEND_ELEMENT, self.host) and await hooks.run(
            XMPP_PRESEND_ELEMENT, self.host, el, self._params
        ):
            return
        self.write(el)

    def hold_requests(self, hold: bool) -> None:
        """Keep `send` requests queued until released (while SASL2 builds <success/>)."""
        self._hold_requests = hold

    async def _flush_requests(self) -> None:
        """Write what handlers asked for with `send`, in order (after the current step)."""
        while self._requests and not self._hold_requests:
            await self.send_element(self._requests.pop(0))

    # -- writing ----------------------------------------------------------------------------
    def write(self, el: Element) -> None:
        """Write now, without hooks (negotiation elements, nonzas outside SM's count)."""
        framed = self.transport.framed
        if el.xmlns == ns.STREAM:
            self._write_raw(_stream_level(el, declare=framed))
            return
        if not el.xmlns:
            el.xmlns = ns.CLIENT
        if framed:
            # RFC 7395 §3.3.3: every frame is a document of its own and declares its namespace.
            self._write_raw(el.to_string("").encode())
            return
        parent = el.xmlns if el.xmlns in (ns.CLIENT, ns.SERVER) else ns.CLIENT
        self._write_raw(el.to_string(parent).encode())

    def _write_raw(self, data: bytes) -> None:
        if self.fsm is State.RESUME_SESSION:
            return  # no transport: stream management keeps what matters
        if self.transport.framed:
            self.transport.write(data)  # one element per frame (RFC 7395)
            return
        self._out.append(data)
        self._out_size += len(data)

    def _flush_out(self) -> None:
        """Write what the last step(s) produced, as one chunk."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        if self.fsm is not State.RESUME_SESSION:
            self.transport.write(data)

    def _send_stream_error(self, exc: StreamError) -> None:
        try:
            if not self._header_sent:
                self.host = self.host or next(iter(self.settings.hosts))
                self._send_header(None)
            self._write_raw(_stream_level(exc.to_element(), declare=self.transport.framed))
            self._write_raw(WS_CLOSE if self.transport.framed else STREAM_CLOSE)
            self._flush_out()
        except (ConnectionError, OSError):
            pass

    # -- the end ----------------------------------------------------------------------------
    async def _terminate(self, reason: str) -> None:
        if self._record is not None:
            # Before the session stops being resumable (CLOSED, unregistered): a <resume/>
            # racing the end must find the session (and wait) or the stale h it leaves.
            jid, sid = self._record.jid, self._record.sid
            params = {"session": self, "jid": jid, "sid": sid, "reason": reason}
            await self.node.hooks.run(USER_TERMINATE, self.host, None, params)
        self.fsm = State.CLOSED
        self.node.live.discard(self)
        record, self._record = self._record, None
        try:
            if record is not None:
                was_available = self._presence is not None
                await self.node.sessions.close(record)
                self._record = record
                params = {
                    "session": self,
                    "jid": record.jid,
                    "sid": record.sid,
                    "reason": reason,
                    "was_available": was_available,
                }
                if was_available:
                    await self.node.hooks.run(UNSET_PRESENCE, self.host, None, params)
                await self.node.hooks.run(SM_REMOVE_CONNECTION, self.host, None, params)
                self._presence = None
                await self.node.hooks.run(REROUTE_UNACKED_MESSAGES, self.host, None, params)
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                self._flush_out()
            self.transport.close()
            await self._reroute_queued()
        log.debug("c2s_session_closed jid=%s reason=%s", self._jid_str, reason)

    async def _reroute_queued(self) -> None:
        while not self._mailbox.empty():
            item = self._mailbox.get_nowait()
            if isinstance(item, Acc):
                await self.node.router.route(item)
            elif isinstance(item, _HandoverRequest) and not item.reply.done():
                item.reply.set_result(None)


def _begin(request: _HandoverRequest) -> bool:
    """A hand-over request taken from the mailbox: False when its asker gave up waiting."""
    if request.reply.done():
        return False
    request.started = True
    return True


def _priority(presence: Element) -> int:
    text = presence.find_text("priority")
    if text is None:
        return 0
    try:
        return max(-128, min(127, int(text.strip())))
    except ValueError:
        return 0


def _is_session_iq(el: Element) -> bool:
    return el.attrs.get("type") == "set" and el.find("session", ns.SESSION) is not None


def _stream_level(el: Element, *, declare: bool = False) -> bytes:
    """Serialize a ``stream:``-prefixed element (features, error) with its children; a
    WebSocket frame (``declare``) binds the prefix itself, a TCP stream has it from its header."""
    inner = "".join(c.to_string(ns.CLIENT) if isinstance(c, Element) else c for c in el.children)
    decl = f' xmlns:stream="{ns.STREAM}"' if declare else ""
    return f"<stream:{el.name}{decl}>{inner}</stream:{el.name}>".encode()


__all__ = ["CB_PREFERENCE", "C2SSession", "Handover"]
