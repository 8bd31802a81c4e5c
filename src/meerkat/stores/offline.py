"""Offline messages (XEP-0160): a per-user queue of stanzas kept while nobody is online.

Times are integers in microseconds since the epoch (MongooseIM's unit), both `timestamp`
(when the message was stored) and `expire` (XEP-0079 style expiry; None = never).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from meerkat.stores.types import UserKey


@dataclass(frozen=True, slots=True)
class OfflineMessage:
    """One stored stanza, as serialized XML."""

    timestamp: int
    from_jid: str
    packet: str
    expire: int | None = None

    def expired(self, now: int) -> bool:
        return self.expire is not None and self.expire <= now


class OfflineStore(Protocol):
    """Per-user offline queues."""

    async def store(self, user: UserKey, messages: list[OfflineMessage], max_per_user: int) -> int:
        """Append messages, oldest first, while the user's queue is below `max_per_user`;
        the number stored (the caller bounces the rest)."""
        ...

    async def pop_all(self, user: UserKey, now: int | None = None) -> list[OfflineMessage]:
        """Remove and return the queue, oldest first; when `now` is given, messages
        expired by then are removed but not returned."""
        ...

    async def count(self, user: UserKey) -> int: ...

    async def remove_user(self, user: UserKey) -> None: ...

    async def delete_expired(self, now: int) -> int:
        """Drop messages whose `expire` is at or before `now`; how many."""
        ...

    async def delete_older_than(self, server: str, cutoff: int) -> int:
        """Drop messages on `server` stored before `cutoff`; how many."""
        ...


class MemoryOfflineStore:
    """`OfflineStore` in lists."""

    def __init__(self) -> None:
        self._queues: dict[UserKey, list[OfflineMessage]] = {}

    async def store(self, user: UserKey, messages: list[OfflineMessage], max_per_user: int) -> int:
        queue = self._queues.setdefault(UserKey(*user), [])
        room = max(0, max_per_user - len(queue))
        queue.extend(messages[:room])
        return min(room, len(messages))

    async def pop_all(self, user: UserKey, now: int | None = None) -> list[OfflineMessage]:
        queue = self._queues.pop(UserKey(*user), [])
        return [m for m in queue if now is None or not m.expired(now)]

    async def count(self, user: UserKey) -> int:
        return len(self._queues.get(UserKey(*user), []))

    async def remove_user(self, user: UserKey) -> None:
        self._queues.pop(UserKey(*user), None)

    async def delete_expired(self, now: int) -> int:
        return self._drop(lambda _user, m: m.expired(now))

    async def delete_older_than(self, server: str, cutoff: int) -> int:
        return self._drop(lambda user, m: user.server == server and m.timestamp < cutoff)

    def _drop(self, doomed: Callable[[UserKey, OfflineMessage], bool]) -> int:
        dropped = 0
        for user, queue in self._queues.items():
            keep = [m for m in queue if not doomed(user, m)]
            dropped += len(queue) - len(keep)
            self._queues[user] = keep
        return dropped
