"""Last activity (XEP-0012): when each user was last seen and their last status text.

`seconds` is a Unix time in seconds (MongooseIM's `last.seconds`).
"""

from __future__ import annotations

from typing import Protocol

from meerkat.stores.types import UserKey


class LastStore(Protocol):
    """Per-user last logout time and status."""

    async def get_last(self, user: UserKey) -> tuple[int, str] | None:
        """(seconds, status) or None when never recorded."""
        ...

    async def set_last(self, user: UserKey, seconds: int, status: str) -> None: ...

    async def remove_user(self, user: UserKey) -> None: ...

    async def count_active(self, server: str, since: int) -> int:
        """Users on `server` whose last activity is at or after `since`."""
        ...

    async def list_old(self, server: str, before: int) -> list[str]:
        """Usernames on `server` last active before `before`, sorted."""
        ...

    async def close(self) -> None:
        """Write what is still held in memory (the node stops; the pool closes next)."""
        ...


class MemoryLastStore:
    """`LastStore` in a dict."""

    def __init__(self) -> None:
        self._last: dict[UserKey, tuple[int, str]] = {}

    async def get_last(self, user: UserKey) -> tuple[int, str] | None:
        return self._last.get(UserKey(*user))

    async def set_last(self, user: UserKey, seconds: int, status: str) -> None:
        self._last[UserKey(*user)] = (seconds, status)

    async def remove_user(self, user: UserKey) -> None:
        self._last.pop(UserKey(*user), None)

    async def count_active(self, server: str, since: int) -> int:
        return sum(1 for u, (s, _) in self._last.items() if u.server == server and s >= since)

    async def list_old(self, server: str, before: int) -> list[str]:
        return sorted(
            u.username for u, (s, _) in self._last.items() if u.server == server and s < before
        )

    async def close(self) -> None:
        return None
