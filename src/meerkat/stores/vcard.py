"""vCards (XEP-0054): one serialized `<vCard/>` element per user."""

from __future__ import annotations

from typing import Protocol

from meerkat.stores.types import UserKey


class VcardStore(Protocol):
    """Per-user vCard XML."""

    async def get_vcard(self, user: UserKey) -> str | None: ...

    async def set_vcard(self, user: UserKey, vcard: str) -> None: ...

    async def remove_user(self, user: UserKey) -> None: ...


class MemoryVcardStore:
    """`VcardStore` in a dict."""

    def __init__(self) -> None:
        self._vcards: dict[UserKey, str] = {}

    async def get_vcard(self, user: UserKey) -> str | None:
        return self._vcards.get(UserKey(*user))

    async def set_vcard(self, user: UserKey, vcard: str) -> None:
        self._vcards[UserKey(*user)] = vcard

    async def remove_user(self, user: UserKey) -> None:
        self._vcards.pop(UserKey(*user), None)
