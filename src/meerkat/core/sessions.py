"""The session manager: which resources of which users are online, and on which node.

Session records live in a `SessionTable`: a plain in-memory table on a single node, and the
replicated CETS ``session`` table in a cluster (its key embeds the owning node so that a
surviving node can delete a dead node's rows). The manager also holds the handles of the
sessions running on this node, and knows how to hand a stanza to any session, local or remote.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StreamError
from ..xmpp.jid import Jid
from ..xmpp.stream import parse_element
from .acc import Acc

log = logging.getLogger(__name__)

PRESENCE_INFO = "presence"
"""`SessionRecord.info` key of the session's broadcast presence (XML), see `set_presence`."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One bound resource. ``priority`` is None until the session sends available presence."""

    sid: str
    jid: Jid
    node: str
    priority: int | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def available(self) -> bool:
        return self.priority is not None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.jid.domain, self.jid.local, self.jid.resource, self.sid)


class SessionHandle(Protocol):
    """What the manager needs of a session running on this node."""

    def deliver(self, acc: Acc) -> bool:
        """Queue a routed stanza for the client; False when the session can no longer take it."""
        ...

    def kick(self, condition: str, text: str | None = None) -> None:
        """Close the session with a stream error (``conflict``, ``policy-violation`` ...)."""
        ...


class SessionTable(Protocol):
    """Storage of session records, local or replicated."""

    def user_sessions(self, domain: str, local: str) -> list[SessionRecord]: ...
    def all_sessions(self) -> Iterable[SessionRecord]: ...
    async def put(self, record: SessionRecord) -> None: ...
    async def remove(self, record: SessionRecord) -> None: ...


class LocalSessionTable:
    """A single node's session table."""

    def __init__(self) -> None:
        self._by_user: dict[tuple[str, str], dict[str, SessionRecord]] = {}

    def user_sessions(self, domain: str, local: str) -> list[SessionRecord]:
        return list(self._by_user.get((domain, local), {}).values())

    def all_sessions(self) -> Iterable[SessionRecord]:
        for resources in list(self._by_user.values()):
            yield from resources.values()

    async def put(self, record: SessionRecord) -> None:
        self._by_user.setdefault((record.jid.domain, record.jid.local), {})[record.sid] = record

    async def remove(self, record: SessionRecord) -> None:
        user = (record.jid.domain, record.jid.local)
        resources = self._by_user.get(user)
        if resources is not None:
            resources.pop(record.sid, None)
            if not resources:
                del self._by_user[user]


RemoteDeliver = Callable[[SessionRecord, Acc], bool]
"""Forward a stanza to a session on another node without waiting (it is queued for that
node's link); False when it cannot be sent there. Synchronous: it is on the hot path."""


class RemoteKick(Protocol):
    """Ask another node to close one of its sessions with a stream error."""

    def __call__(
        self, record: SessionRecord, condition: str, text: str | None = None, /
    ) -> Awaitable[None]: ...


TakeOverHandler = Callable[[SessionHandle, str, str], Awaitable[Any]]
"""(old session's handle, smid, new sid) -> its state for a resuming connection, or None.

Set by the stream management module. It stops the old session (without the unavailable
broadcast a resumption must not cause), hands its routing over to the new sid (`hand_off`)
and returns what the new connection needs (``h``, unacknowledged stanzas ...). The state
crosses the cluster when the new session runs on another node, so it must be plain data:
str, int, float, bool, None, bytes, lists, dicts.
"""
RemoteTakeOver = Callable[[str, str, str, str], Awaitable[Any]]
"""(node, sid, smid, new sid) -> `TakeOverHandler`'s answer on that node (None: failed)."""
FORWARD_TTL = 30.0
"""Seconds a node forwards stanzas for a session that moved to another node (`hand_off`)."""


def broadcast_presence(record: SessionRecord) -> Element | None:
    """The presence stored by `SessionManager.set_presence` (a fresh copy), or None."""
    text = record.info.get(PRESENCE_INFO)
    if not isinstance(text, str):
        return None
    try:
        return parse_element(text)
    except StreamError:
        log.warning("session_presence_unreadable sid=%s", record.sid)
        return None


def sid_order(sid: str) -> tuple[int, int, str]:
    """Sort key of session ids: opening time, then the node's counter, then the node."""
    head, _, node = sid.partition("@")
    micros, _, counter = head.partition(".")
    try:
        return int(micros), int(counter or 0), node
    except ValueError:
        return 0, 0, sid


RESUMES_INFO = "resumes"
"""`SessionRecord.info` key: the sid of the session this one is taking over (a XEP-0198
resumption on another node writes the new row before the old one is deleted)."""


def newer(a: SessionRecord, b: SessionRecord) -> bool:
    """Of two sessions of one full JID, `a` is the one that counts: it takes `b` over, or
    it was opened later."""
    if a.info.get(RESUMES_INFO) == b.sid:
        return True
    if b.info.get(RESUMES_INFO) == a.sid:
        return False
    return sid_order(a.sid) > sid_order(b.sid)


def sid_node(sid: str) -> str:
    """The node a session id names (`SessionManager.new_sid`)."""
    return sid.partition("@")[2]


class SessionManager:
    """Opens and closes sessions and hands stanzas to them."""

    def __init__(self, node: str, table: SessionTable | None = None) -> None:
        self.node = node
        self.table: SessionTable = table if table is not None else LocalSessionTable()
        self._handles: dict[str, SessionHandle] = {}
        self._counter = itertools.count(1)
        self.remote_deliver: RemoteDeliver | None = None
        self.remote_kick: RemoteKick | None = None
        self.sm_table: Any = None
        """XEP-0198 resumption ids when they must be shared (a cluster sets a replicated
        `meerkat.modules.stream_management.SmTable`); None: the module keeps its own."""
        self.sm_buffer: Any = None
        """A cluster's mirror of XEP-0198 buffers (`stream_management.BufferMirror`), so
        that a surviving node can store a dead node's unacknowledged messages; None: none."""
        self.takeover_handler: TakeOverHandler | None = None
        self.remote_takeover: RemoteTakeOver | None = None
        self._forwards: dict[str, tuple[SessionRecord, float]] = {}
        """Sids of sessions that moved to another node -> (their new record, until when)."""

    def new_sid(self, now: float) -> str:
        """A session id unique in the cluster, naming its node."""
        return f"{int(now * 1_000_000)}.{next(self._counter)}@{self.node}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self, record: SessionRecord, handle: SessionHandle) -> list[SessionRecord]:
        """Register a bound session; any other session with the same full JID is replaced.

        Returns the records that were replaced (they are kicked with ``conflict``). A replaced
        session on another node keeps its row until that node closes it (a row has one writer,
        its owner); meanwhile lookups prefer the newest session (`session`).
        """
        replaced = [
            r
            for r in self.table.user_sessions(record.jid.domain, record.jid.local)
            if r.jid.resource == record.jid.resource and r.sid != record.sid
        ]
        for old in replaced:
            if old.node == self.node:
                await self.table.remove(old)
        self._handles[record.sid] = handle
        await self.table.put(record)
        for old in replaced:
            await self._kick(old, "conflict")
        return replaced

    async def close(self, record: SessionRecord) -> None:
        """Forget a session (on disconnect)."""
        self._handles.pop(record.sid, None)
        await self.table.remove(record)

    async def update(self, record: SessionRecord, **changes: Any) -> SessionRecord:
        """Replace a record's fields (priority on presence) and store it."""
        new = replace(record, **changes)
        await self.table.put(new)
        return new

    async def set_presence(
        self, record: SessionRecord, priority: int | None, presence: Element | None
    ) -> SessionRecord:
        """Store a session's broadcast presence with its priority (None: unavailable).

        The presence is kept in the record (``info["presence"]``, XML) so that a node
        answering a probe for a session running elsewhere can send that session's real
        presence (show, status ...), see `broadcast_presence`. One replicated write per
        presence change, where `update(priority=...)` writes only when the priority changes.
        """
        info = dict(record.info)
        if presence is None:
            info.pop(PRESENCE_INFO, None)
        else:
            info[PRESENCE_INFO] = presence.to_string(ns.CLIENT)
        # A new record by hand, not `update`'s generic dataclasses.replace (once per presence).
        new = SessionRecord(record.sid, record.jid, record.node, priority, info)
        await self.table.put(new)
        return new

    async def _kick(self, record: SessionRecord, condition: str, text: str | None = None) -> None:
        handle = self._handles.pop(record.sid, None)
        if handle is not None:
            handle.kick(condition, text)
        elif record.node != self.node and self.remote_kick is not None:
            if text is None:
                await self.remote_kick(record, condition)
            else:
                await self.remote_kick(record, condition, text)

    async def kick(
        self, record: SessionRecord, condition: str = "policy-violation", text: str | None = None
    ) -> None:
        """Close a session wherever it runs (admin kick, replacement)."""
        await self._kick(record, condition, text)

    def kick_local(self, sid: str, condition: str, text: str | None = None) -> bool:
        """Close a session of this node by sid (a kick forwarded by a peer); False if gone."""
        handle = self._handles.pop(sid, None)
        if handle is None:
            return False
        handle.kick(condition, text)
        return True

    # -- lookups -----------------------------------------------------------------------------
    def user_sessions(self, jid: Jid) -> list[SessionRecord]:
        """A user's sessions, one per resource: while a replaced or resumed-elsewhere
        session's row lingers, only its successor counts (see `newer`)."""
        records = self.table.user_sessions(jid.domain, jid.local)
        if len(records) < 2:
            return records
        by_resource: dict[str, SessionRecord] = {}
        for r in records:
            other = by_resource.get(r.jid.resource)
            if other is None or newer(r, other):
                by_resource[r.jid.resource] = r
        if len(by_resource) == len(records):
            return records
        return list(by_resource.values())

    def session(self, jid: Jid) -> SessionRecord | None:
        """The session of a full JID; the newest one while a replaced session lingers."""
        found: SessionRecord | None = None
        for r in self.table.user_sessions(jid.domain, jid.local):
            if r.jid.resource == jid.resource and (found is None or newer(r, found)):
                found = r
        return found

    def all_sessions(self) -> list[SessionRecord]:
        return list(self.table.all_sessions())

    def local_handle(self, sid: str) -> SessionHandle | None:
        return self._handles.get(sid)

    def local_count(self) -> int:
        return len(self._handles)

    # -- delivery ----------------------------------------------------------------------------
    async def deliver(self, record: SessionRecord, acc: Acc) -> bool:
        """Hand a stanza to one session; False when that session is gone."""
        handle = self._handles.get(record.sid)
        if handle is not None:
            return handle.deliver(acc)
        if record.node != self.node and self.remote_deliver is not None:
            return self.remote_deliver(record, acc)
        return bool(self._forwards) and self._forward(record.sid, acc)

    async def take_over(self, sid: str, smid: str, new_sid: str) -> Any:
        """XEP-0198 resumption on another node: stop session `sid` wherever it runs, let
        stanzas for it reach `new_sid` (see `reserve`), and return its state.

        None when the session is gone, is not resumable, or its node cannot be asked.
        """
        node = sid_node(sid)
        if node == self.node:
            handle = self._handles.get(sid)
            if handle is None or self.takeover_handler is None:
                return None
            return await self.takeover_handler(handle, smid, new_sid)
        if self.remote_takeover is None:
            return None
        return await self.remote_takeover(node, sid, smid, new_sid)

    def reserve(self, sid: str, handle: SessionHandle) -> None:
        """Route stanzas for `sid` to `handle` before it is opened (a resumption on this node
        waiting for the old node's answer); `open` or `release` ends the reservation."""
        self._handles[sid] = handle

    def release(self, sid: str, handle: SessionHandle) -> None:
        """Drop a `reserve` that did not lead to `open`."""
        if self._handles.get(sid) is handle:
            del self._handles[sid]

    async def hand_off(self, record: SessionRecord, to: SessionRecord) -> None:
        """Session `record` of this node continues as `to` on another node (resumption).

        In one synchronous step its handle goes and stanzas still arriving for its sid are
        forwarded to `to` (for `FORWARD_TTL` seconds: peers may route on a row they have not
        seen deleted yet); then its row is deleted (replicated; returns once peers acked).
        """
        now = time.monotonic()
        self._forwards = {s: f for s, f in self._forwards.items() if f[1] > now}
        self._handles.pop(record.sid, None)
        self._forwards[record.sid] = (to, now + FORWARD_TTL)
        await self.table.remove(record)

    def _forward(self, sid: str, acc: Acc) -> bool:
        forward = self._forwards.get(sid)
        if forward is None or self.remote_deliver is None:
            return False
        to, until = forward
        if until < time.monotonic():
            del self._forwards[sid]
            return False
        return self.remote_deliver(to, acc)

    def deliver_local(self, sid: str, acc: Acc) -> bool:
        """Deliver to a session on this node by sid (used for stanzas forwarded by a peer)."""
        handle = self._handles.get(sid)
        if handle is None:
            return bool(self._forwards) and self._forward(sid, acc)
        return handle.deliver(acc)


def highest_priority(records: list[SessionRecord]) -> list[SessionRecord]:
    """The available sessions with the highest non-negative priority (RFC 6121 §8.5.2.1.1)."""
    best = -1
    chosen: list[SessionRecord] = []
    for r in records:
        p = r.priority
        if p is None or p < 0:
            continue
        if p > best:
            best, chosen = p, [r]
        elif p == best:
            chosen.append(r)
    return chosen
