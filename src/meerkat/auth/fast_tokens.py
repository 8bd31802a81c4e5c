"""The FAST token service (XEP-0484): issue, verify, rotate and revoke login tokens.

A token belongs to one user and one client (the SASL2 user-agent id) and is bound to the HT
mechanism the client asked for. Two slots per client (`meerkat.stores.fast_tokens`) make
rotation safe on lossy links: a freshly issued token waits in 'new' and the previous one stays
valid until the new one is used; using 'new' retires the old one.

Only token *keys* (SHA-256) are stored; see `meerkat.xmpp.sasl.ht` for why that is enough to
check an HT proof. Randomness and time come from the caller (`token_factory`, `clock`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..core.clock import Clock
from ..stores.fast_tokens import FastTokenStore, TokenSlot
from ..stores.types import UserKey
from ..xmpp.jid import Jid
from ..xmpp.sasl.ht import responder_hash, token_key, verify_initiator

__all__ = ["FastTokens", "IssuedToken", "TokenAttempt", "TokenResult", "new_token"]


def new_token() -> str:
    """A fresh token: 96 URL-safe characters (longer than SHA-256's block, see `ht`)."""
    return secrets.token_urlsafe(72)


@dataclass(frozen=True, slots=True)
class TokenResult:
    """The verdict on a token: `ok` with the server's proof, else a SASL condition."""

    ok: bool
    condition: str = "not-authorized"
    responder: bytes = b""
    expire: int = 0


@dataclass(slots=True)
class TokenAttempt:
    """One HT authentication to verify (the `fast_authenticate` hook's accumulator)."""

    user: Jid
    mechanism: str
    initiator_hash: bytes
    cb_data: bytes
    user_agent_id: str | None
    result: TokenResult | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token handed to a client (the only time the server sees it in clear)."""

    token: str
    mechanism: str
    expire: int


class FastTokens:
    """Tokens for a store, valid `validity` seconds, rotated within `rotate_before` of expiry."""

    def __init__(
        self,
        store: FastTokenStore,
        clock: Clock,
        *,
        validity: float,
        rotate_before: float,
        token_factory: Callable[[], str] = new_token,
    ) -> None:
        self.store = store
        self.clock = clock
        self.validity = validity
        self.rotate_before = rotate_before
        self._token_factory = token_factory

    async def authenticate(self, attempt: TokenAttempt) -> TokenResult:
        """Check a proof against the client's 'new' then 'current' token (XEP-0484 §6.1)."""
        if not attempt.user_agent_id:
            return TokenResult(False, "not-authorized")
        user = _key(attempt.user)
        slots = await self.store.get_tokens(user, attempt.user_agent_id)
        now = self.clock.now()
        for is_new, slot in ((True, slots.new), (False, slots.current)):
            if slot is None or slot.mechanism != attempt.mechanism:
                continue  # a token is bound to its mechanism
            if not verify_initiator(slot.key, attempt.initiator_hash, attempt.cb_data):
                continue
            if slot.expire <= now:
                return TokenResult(False, "credentials-expired")
            if is_new:
                await self.store.promote_new(user, attempt.user_agent_id)
            return TokenResult(
                True, responder=responder_hash(slot.key, attempt.cb_data), expire=slot.expire
            )
        return TokenResult(False, "not-authorized")

    def due_for_rotation(self, result: TokenResult) -> bool:
        """True when a token just used expires within `rotate_before`."""
        return result.ok and result.expire - self.clock.now() <= self.rotate_before

    async def issue(self, user: Jid, user_agent_id: str, mechanism: str) -> IssuedToken:
        """A new token in the client's 'new' slot (an unused earlier one is forgotten)."""
        token = self._token_factory()
        expire = int(self.clock.now() + self.validity)
        slot = TokenSlot(token_key(token), mechanism, expire)
        await self.store.set_new(_key(user), user_agent_id, slot)
        return IssuedToken(token, mechanism, expire)

    async def invalidate(self, user: Jid, user_agent_id: str) -> None:
        """The client asked for its tokens to be revoked (``<fast invalidate='true'/>``)."""
        await self.store.remove_client(_key(user), user_agent_id)

    async def remove_user(self, user: Jid) -> None:
        """Revoke every token of a user (password change, account removal)."""
        await self.store.remove_user(_key(user))


def _key(jid: Jid) -> UserKey:
    return UserKey(jid.domain, jid.local)
