"""The account service: create, check, change and remove local accounts.

Used by SASL (PLAIN and SCRAM), the admin API and in-band registration. It owns the password
record format (`meerkat.auth.password`: MongooseIM's MULTI_SCRAM line, or plain text when
`auth.password.format = "plain"`) and the rules MongooseIM's `ejabberd_auth` applies:

- only configured domains have accounts; the username must be a valid JID localpart
  (stored normalised); the password must not be empty; `max_users_per_domain` is a hard cap;
- `register_user` runs after an account is created; `remove_user` runs *before* it is deleted,
  so modules can still read what they must clean up, then the user's sessions are closed.

The hard parts: PBKDF2 is slow by design, so every hash computation runs in a thread; SCRAM
login needs the stored credentials in one store round trip (`get_scram_credentials`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from ..core.hooks import PASSWORD_CHANGED, REGISTER_USER, REMOVE_USER, HookRegistry
from ..core.sessions import SessionManager
from ..xmpp.jid import Jid, JidError, prep_domain
from ..xmpp.sasl.scram.crypto import ScramCredentials
from . import password as pw

__all__ = ["AccountError", "AccountExists", "Accounts", "UserStore"]

KICK_CONDITION = "not-authorized"
"""Stream error sent to the sessions of a removed account."""


class UserStore(Protocol):
    """What accounts need of storage (`meerkat.stores.users.UserStore` satisfies it)."""

    async def create_user(self, server: str, username: str, password_record: str) -> bool: ...
    async def get_password(self, server: str, username: str) -> str | None: ...
    async def set_password(self, server: str, username: str, password_record: str) -> bool: ...
    async def remove_user(self, server: str, username: str) -> bool: ...
    async def user_exists(self, server: str, username: str) -> bool: ...
    async def list_users(self, server: str) -> list[str]: ...
    async def count_users(self, server: str) -> int: ...


class AccountError(Exception):
    """A refused account operation. ``reason`` is MongooseIM's error atom:

    ``not_allowed`` (unknown domain), ``invalid_jid``, ``null_password`` (empty password),
    ``limit_per_domain_exceeded``, ``exists``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AccountExists(AccountError):
    """The account is already registered."""

    def __init__(self, jid: Jid) -> None:
        super().__init__("exists", f"User {jid.bare_str} already exists")
        self.jid = jid


class Accounts:
    """Local accounts on top of a `UserStore`.

    ``password_format`` is "scram" (store SCRAM keys for ``hashes`` with ``iterations``) or
    "plain". ``max_users_per_domain`` None means unlimited. ``sessions`` (optional) lets
    `remove` close the removed user's sessions.
    """

    def __init__(
        self,
        store: UserStore,
        hosts: Collection[str],
        hooks: HookRegistry,
        sessions: SessionManager | None = None,
        *,
        password_format: str = "scram",
        hashes: Sequence[str] = ("sha", "sha256", "sha512"),
        iterations: int = 10000,
        max_users_per_domain: int | None = None,
        salt_factory: Callable[[], bytes] | None = None,
    ) -> None:
        if password_format not in ("scram", "plain"):
            raise ValueError(f"unknown password format {password_format!r}")
        self.store = store
        self.hosts = hosts
        self.hooks = hooks
        self.sessions = sessions
        self.password_format = password_format
        self.hashes = tuple(hashes)
        self.iterations = iterations
        self.max_users_per_domain = max_users_per_domain
        self._salt = salt_factory if salt_factory is not None else (lambda: os.urandom(16))

    @classmethod
    def from_config(
        cls,
        store: UserStore,
        hosts: Collection[str],
        hooks: HookRegistry,
        sessions: SessionManager | None,
        auth: object,
    ) -> Accounts:
        """Build from the `[auth]` section (`meerkat.config.schema.auth.AuthConfig`)."""
        password = auth.password  # type: ignore[attr-defined]
        limit = auth.max_users_per_domain  # type: ignore[attr-defined]
        return cls(
            store,
            hosts,
            hooks,
            sessions,
            password_format=password.format,
            hashes=password.hash,
            iterations=password.scram_iterations,
            max_users_per_domain=None if limit == "infinity" else int(limit),
        )

    # -- helpers -------------------------------------------------------------------------------
    def is_local_domain(self, domain: str) -> bool:
        return domain in self.hosts

    def user_jid(self, username: str, domain: str) -> Jid:
        """The normalised bare JID of an account; AccountError ``invalid_jid`` when invalid."""
        try:
            jid = Jid.make(username, domain)
        except JidError:
            raise AccountError("invalid_jid", f"Invalid JID {username}@{domain}") from None
        if not jid.local:
            raise AccountError("invalid_jid", f"Invalid JID {username}@{domain}")
        return jid

    def _local(self, jid: Jid) -> bool:
        return bool(jid.local) and jid.domain in self.hosts

    async def make_record(self, password: str) -> str:
        """The stored form of a password (PBKDF2 in a thread for SCRAM)."""
        if self.password_format == "plain":
            return password
        return await asyncio.to_thread(
            pw.make_record, password, self.hashes, self.iterations, self._salt
        )

    # -- registration ----------------------------------------------------------------------------
    async def register(self, jid: Jid, password: str) -> Jid:
        """Create an account for ``jid`` (its resource is ignored); returns the bare JID.

        Raises `AccountExists`, or `AccountError` for an unknown domain (``not_allowed``),
        an invalid username (``invalid_jid``), an empty password (``null_password``) or a
        full domain (``limit_per_domain_exceeded``).
        """
        bare = jid.bare
        if not bare.local:
            raise AccountError("invalid_jid", f"Invalid JID {bare}")
        if bare.domain not in self.hosts:
            raise AccountError("not_allowed", f"Domain {bare.domain} is not served here")
        if not password:
            raise AccountError("null_password", "Empty password")
        limit = self.max_users_per_domain
        if limit is not None and await self.store.count_users(bare.domain) >= limit:
            raise AccountError(
                "limit_per_domain_exceeded",
                f"User limit has been exceeded for domain {bare.domain}",
            )
        try:
            record = await self.make_record(password)
        except ValueError:
            raise AccountError("invalid_password", "Invalid password") from None
        if not await self.store.create_user(bare.domain, bare.local, record):
            raise AccountExists(bare)
        await self.hooks.run(REGISTER_USER, bare.domain, None, {"jid": bare})
        return bare

    async def remove(self, jid: Jid) -> bool:
        """Remove an account and its data; False when there was no such account.

        REMOVE_USER runs first (modules delete the user's data), then the account is deleted
        and the user's sessions are closed with ``not-authorized``.
        """
        bare = jid.bare
        if not self._local(bare) or not await self.store.user_exists(bare.domain, bare.local):
            return False
        await self.hooks.run(REMOVE_USER, bare.domain, None, {"jid": bare})
        removed = await self.store.remove_user(bare.domain, bare.local)
        if self.sessions is not None:
            for record in self.sessions.user_sessions(bare):
                await self.sessions.kick(record, KICK_CONDITION)
        return removed

    # -- lookups ---------------------------------------------------------------------------------
    async def exists(self, jid: Jid) -> bool:
        if not self._local(jid):
            return False
        return await self.store.user_exists(jid.domain, jid.local)

    async def list_users(self, domain: str) -> list[Jid]:
        """Accounts of a domain as bare JIDs, sorted; empty for an unknown domain."""
        served = _domain(domain)
        if served is None or served not in self.hosts:
            return []
        return [Jid(u, served) for u in await self.store.list_users(served)]

    async def count_users(self, domain: str) -> int:
        served = _domain(domain)
        if served is None or served not in self.hosts:
            return 0
        return await self.store.count_users(served)

    # -- passwords -------------------------------------------------------------------------------
    async def check_password(self, jid: Jid, password: str) -> bool:
        """True when the account exists and the password matches (PBKDF2 in a thread)."""
        if not password or not self._local(jid):
            return False
        stored = await self.store.get_password(jid.domain, jid.local)
        if stored is None:
            return False
        try:
            return await asyncio.to_thread(pw.check_password, stored, password)
        except pw.InvalidRecord:
            return False

    async def plain_password(self, jid: Jid) -> str | None:
        """The stored password when it is kept in plain text; None for SCRAM or no account."""
        if not self._local(jid):
            return None
        stored = await self.store.get_password(jid.domain, jid.local)
        if stored is None:
            return None
        try:
            record = pw.parse_record(stored)
        except pw.InvalidRecord:
            return None
        return record.password if isinstance(record, pw.PlainRecord) else None

    async def check_plain(self, jid: Jid, password: str) -> bool:
        """SASL PLAIN: the same as `check_password`."""
        return await self.check_password(jid, password)

    async def set_password(self, jid: Jid, password: str) -> bool:
        """Replace the password (then PASSWORD_CHANGED runs); False when there is no such account.

        AccountError ``null_password`` for an empty password.
        """
        if not password:
            raise AccountError("null_password", "Empty password")
        if not self._local(jid) or not await self.store.user_exists(jid.domain, jid.local):
            return False
        try:
            record = await self.make_record(password)
        except ValueError:
            raise AccountError("invalid_password", "Invalid password") from None
        changed = await self.store.set_password(jid.domain, jid.local, record)
        if changed:  # credentials derived from the old password (FAST tokens) are revoked
            await self.hooks.run(PASSWORD_CHANGED, jid.domain, None, {"jid": jid.bare})
        return changed

    async def get_scram_credentials(self, jid: Jid, sasl_hash: str) -> ScramCredentials | None:
        """The SCRAM credentials for ``sasl_hash`` ("SHA-256" or "sha256") in one store call.

        None when the account does not exist, its record is invalid or lacks that hash. For a
        plain-text record they are derived on the spot with a fresh salt (in a thread).
        """
        if not self._local(jid):
            return None
        stored = await self.store.get_password(jid.domain, jid.local)
        if stored is None:
            return None
        try:
            record = pw.parse_record(stored)
        except pw.InvalidRecord:
            return None
        if isinstance(record, pw.ScramRecord):
            return pw.scram_credentials(
                record, sasl_hash, salt_factory=self._salt, iterations=self.iterations
            )
        return await asyncio.to_thread(
            lambda: pw.scram_credentials(
                record, sasl_hash, salt_factory=self._salt, iterations=self.iterations
            )
        )


def _domain(domain: str) -> str | None:
    try:
        return prep_domain(domain)
    except JidError:
        return None
