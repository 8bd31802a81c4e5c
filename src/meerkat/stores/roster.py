"""Rosters (RFC 6121 §2): items, their groups, and the roster version (XEP-0237).

The store keeps what the roster module decides; it never interprets subscription rules.
Writes that change the roster and its version go together: `set_item(..., version=v)`
and `remove_item(..., version=v)` write both atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from meerkat.stores.types import UserKey

Subscription = Literal["none", "to", "from", "both"]
Ask = Literal["none", "out", "in", "both"]


@dataclass(frozen=True, slots=True)
class RosterItem:
    """One contact in a user's roster."""

    jid: str  # bare JID of the contact
    name: str = ""
    subscription: Subscription = "none"
    ask: Ask = "none"  # pending subscription requests: "out" we asked, "in" they asked
    groups: tuple[str, ...] = ()
    approved: bool = False  # subscription pre-approval (RFC 6121 §3.4)
    askmessage: str = ""  # text of the pending inbound request


class RosterStore(Protocol):
    """Per-user rosters."""

    async def get_roster(self, user: UserKey) -> list[RosterItem]:
        """All items, sorted by jid."""
        ...

    async def get_item(self, user: UserKey, contact_jid: str) -> RosterItem | None: ...

    async def set_item(self, user: UserKey, item: RosterItem, version: str | None = None) -> None:
        """Insert or replace the item (groups included); also store `version` if given."""
        ...

    async def remove_item(
        self, user: UserKey, contact_jid: str, version: str | None = None
    ) -> bool:
        """Delete the item (False if absent); also store `version` if given."""
        ...

    async def get_version(self, user: UserKey) -> str | None: ...

    async def set_version(self, user: UserKey, version: str) -> None: ...

    async def remove_user(self, user: UserKey) -> None:
        """Forget the whole roster and its version."""
        ...


def normalised(item: RosterItem) -> RosterItem:
    """Groups as a duplicate-free tuple in first-seen order (what every store returns)."""
    groups = tuple(dict.fromkeys(item.groups))
    if groups == item.groups:
        return item
    return RosterItem(
        item.jid, item.name, item.subscription, item.ask, groups, item.approved, item.askmessage
    )


class MemoryRosterStore:
    """`RosterStore` in dicts."""

    def __init__(self) -> None:
        self._items: dict[UserKey, dict[str, RosterItem]] = {}
        self._versions: dict[UserKey, str] = {}

    async def get_roster(self, user: UserKey) -> list[RosterItem]:
        items = self._items.get(UserKey(*user), {})
        return [items[jid] for jid in sorted(items)]

    async def get_item(self, user: UserKey, contact_jid: str) -> RosterItem | None:
        return self._items.get(UserKey(*user), {}).get(contact_jid)

    async def set_item(self, user: UserKey, item: RosterItem, version: str | None = None) -> None:
        self._items.setdefault(UserKey(*user), {})[item.jid] = normalised(item)
        if version is not None:
            self._versions[UserKey(*user)] = version

    async def remove_item(
        self, user: UserKey, contact_jid: str, version: str | None = None
    ) -> bool:
        existed = self._items.get(UserKey(*user), {}).pop(contact_jid, None) is not None
        if version is not None:
            self._versions[UserKey(*user)] = version
        return existed

    async def get_version(self, user: UserKey) -> str | None:
        return self._versions.get(UserKey(*user))

    async def set_version(self, user: UserKey, version: str) -> None:
        self._versions[UserKey(*user)] = version

    async def remove_user(self, user: UserKey) -> None:
        self._items.pop(UserKey(*user), None)
        self._versions.pop(UserKey(*user), None)
