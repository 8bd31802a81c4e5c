"""Private XML storage (XEP-0049): one XML element per (user, namespace)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from meerkat.stores.types import UserKey


class PrivateStore(Protocol):
    """Per-user, per-namespace private XML."""

    async def get(self, user: UserKey, namespace: str) -> str | None: ...

    async def set_many(self, user: UserKey, items: Mapping[str, str]) -> None:
        """Store several namespace -> XML entries at once (all or none)."""
        ...

    async def remove_user(self, user: UserKey) -> None: ...


class MemoryPrivateStore:
    """`PrivateStore` in a dict."""

    def __init__(self) -> None:
        self._data: dict[UserKey, dict[str, str]] = {}

    async def get(self, user: UserKey, namespace: str) -> str | None:
        return self._data.get(UserKey(*user), {}).get(namespace)

    async def set_many(self, user: UserKey, items: Mapping[str, str]) -> None:
        self._data.setdefault(UserKey(*user), {}).update(items)

    async def remove_user(self, user: UserKey) -> None:
        self._data.pop(UserKey(*user), None)
