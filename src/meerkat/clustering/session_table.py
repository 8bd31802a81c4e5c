"""The replicated `session` table behind the session manager's `SessionTable` protocol.

Rows: key ``(domain, local, resource, sid)``, value ``[node, priority, info]``. The session
id ends with ``@<node>`` and the value names the owning node, so every row has exactly one
writer (the node running the session, CETS's rule) and a survivor can find a dead node's
rows. Keys sort by user first, so a user's sessions are one prefix scan of the local copy.

Reads are local and on the routing hot path: rebuilding a `SessionRecord` for each lookup
would cost more than the lookup, so records are cached per row and reused for as long as
the stored value is the very same object (any write replaces it). A local write caches the
record it wrote, so lookups of a session of this node return that session's own record
(issue 6: not a second record and JID per session).

Deletes are batched per turn of the event loop: the rows removed during one turn leave as
one replicated delete at its end. When thousands of sessions end at once, the node sends,
and every peer decodes, applies and acks, one op per turn instead of one per session (a
logout storm of 100,000 sessions over 6 workers was 83,000 remote ops for each worker to
apply). Each remover still waits until every peer applied its delete.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from typing import Any

from ..cluster import Key, ReplicatedTable
from ..core.sessions import SessionRecord
from ..xmpp.jid import Jid

TABLE = "session"
MAX_DELETES = 500
"""Keys per replicated delete op at most (a frame stays small for the peers' loops)."""


def row_value(record: SessionRecord) -> list[Any]:
    return [record.node, record.priority, record.info]


def owner(value: Any) -> str:
    """The node owning a row's session."""
    return str(value[0])


class ReplicatedSessionTable:
    """`SessionTable` over a `ReplicatedTable` (writes wait for every peer's ack)."""

    def __init__(self, table: ReplicatedTable) -> None:
        self.table = table
        self._cache: dict[Key, tuple[Any, SessionRecord]] = {}
        self._removals: list[tuple[Key, asyncio.Future[None]]] = []
        """Rows removed during this loop turn, deleted by `_flush_removals` at its end."""

    def _record(self, key: Key, value: Any) -> SessionRecord:
        cached = self._cache.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        domain, local, resource, sid = key
        node, priority, info = value
        record = SessionRecord(
            sid=str(sid),
            jid=Jid(str(local), str(domain), str(resource)),
            node=str(node),
            priority=priority,
            info=info if isinstance(info, dict) else {},
        )
        self._remember(key, value, record)
        return record

    def _remember(self, key: Key, value: Any, record: SessionRecord) -> None:
        if len(self._cache) > 2 * len(self.table) + 1024:
            self._cache.clear()  # rows deleted since: start over rather than track them
        self._cache[key] = (value, record)

    def user_sessions(self, domain: str, local: str) -> list[SessionRecord]:
        return [self._record(k, v) for k, v in self.table.match((domain, local))]

    def all_sessions(self) -> Iterable[SessionRecord]:
        for key, value in self.table.dump():
            yield self._record(key, value)

    def owned_by(self, node: str) -> list[SessionRecord]:
        """The rows of sessions running on `node`."""
        return [self._record(k, v) for k, v in self.table.select(lambda _, v: owner(v) == node)]

    async def put(self, record: SessionRecord) -> None:
        key, value = record.key, row_value(record)
        self._remember(key, value, record)
        await self.table.insert(key, value)

    async def remove(self, record: SessionRecord) -> None:
        """Delete the row; returns once every peer applied the delete. Until the end of the
        loop turn, local reads still see it (as they did before `remove` was called)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._removals:
            asyncio.get_running_loop().call_soon(self._flush_removals)
        self._removals.append((record.key, done))
        await done

    def _flush_removals(self) -> None:
        removals, self._removals = self._removals, []
        for start in range(0, len(removals), MAX_DELETES):
            part = removals[start : start + MAX_DELETES]
            try:
                applied = self.table.write_nowait(deletes=[key for key, _ in part])
            except Exception as exc:  # the callers hear of it, the next part goes on
                _settle(part, exc)
                continue
            applied.add_done_callback(functools.partial(_applied, part))


def _applied(part: list[tuple[Key, asyncio.Future[None]]], applied: asyncio.Future[Any]) -> None:
    _settle(part, None if applied.cancelled() else applied.exception())


def _settle(part: list[tuple[Key, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, done in part:
        if done.done():  # its remover was cancelled
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
