"""FAST tokens (XEP-0484): per user and client, a 'current' and a 'new' token slot.

A client is identified by its SASL2 user-agent id. Each slot holds the token's *key* (SHA-256
of the token, see `meerkat.xmpp.sasl.ht.token_key`; the token itself is never stored), the
mechanism it is bound to, its expiry (Unix seconds) and the 0-RTT replay counter. The two
slots implement XEP-0484's rotation: a new token goes into 'new'; using it moves it to
'current'; using 'current' leaves 'new' alone. MongooseIM keeps the same two slots in its
`fast_auth_token` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from meerkat.stores.types import UserKey


@dataclass(frozen=True, slots=True)
class TokenSlot:
    """One stored token."""

    key: bytes
    mechanism: str
    expire: int
    """Unix seconds."""
    count: int = 0


@dataclass(frozen=True, slots=True)
class ClientTokens:
    """The two slots of one client; either may be empty."""

    current: TokenSlot | None = None
    new: TokenSlot | None = None


class FastTokenStore(Protocol):
    """Token slots per (user, user-agent id)."""

    async def get_tokens(self, user: UserKey, agent_id: str) -> ClientTokens:
        """Both slots (empty ones as None)."""
        ...

    async def set_new(self, user: UserKey, agent_id: str, slot: TokenSlot) -> None:
        """Put a freshly issued token in the 'new' slot (replacing what was there)."""
        ...

    async def promote_new(self, user: UserKey, agent_id: str) -> None:
        """The 'new' token was used: it becomes 'current' and 'new' is emptied."""
        ...

    async def remove_client(self, user: UserKey, agent_id: str) -> None:
        """Forget both slots of a client (explicit invalidation)."""
        ...

    async def remove_user(self, user: UserKey) -> None:
        """Forget every token of a user (password change, account removal)."""
        ...


class MemoryFastTokenStore:
    """`FastTokenStore` in a dict."""

    def __init__(self) -> None:
        self._rows: dict[tuple[UserKey, str], ClientTokens] = {}

    async def get_tokens(self, user: UserKey, agent_id: str) -> ClientTokens:
        return self._rows.get((UserKey(*user), agent_id), ClientTokens())

    async def set_new(self, user: UserKey, agent_id: str, slot: TokenSlot) -> None:
        key = (UserKey(*user), agent_id)
        self._rows[key] = ClientTokens(self._rows.get(key, ClientTokens()).current, slot)

    async def promote_new(self, user: UserKey, agent_id: str) -> None:
        key = (UserKey(*user), agent_id)
        row = self._rows.get(key)
        if row is not None and row.new is not None:
            self._rows[key] = ClientTokens(row.new, None)

    async def remove_client(self, user: UserKey, agent_id: str) -> None:
        self._rows.pop((UserKey(*user), agent_id), None)

    async def remove_user(self, user: UserKey) -> None:
        owner = UserKey(*user)
        for key in [k for k in self._rows if k[0] == owner]:
            del self._rows[key]


__all__ = ["ClientTokens", "FastTokenStore", "MemoryFastTokenStore", "TokenSlot"]
