"""Accounts: who exists on a server and their stored password record.

The password record is an opaque string for the store: normally the MULTI_SCRAM line
(`==MULTI_SCRAM==,<iterations>,===SHA1===salt|stored|server,...`, see
docs/reference §7), or a plain password when `auth.password.format = "plain"`.
"""

from __future__ import annotations

from typing import Protocol


class UserStore(Protocol):
    """Persistent accounts keyed by (server, username)."""

    async def create_user(self, server: str, username: str, password_record: str) -> bool:
        """Create the account; False (and no change) if it already exists. Atomic."""
        ...

    async def get_password(self, server: str, username: str) -> str | None:
        """The stored password record, or None when there is no such user."""
        ...

    async def set_password(self, server: str, username: str, password_record: str) -> bool:
        """Replace the password record; False when there is no such user."""
        ...

    async def remove_user(self, server: str, username: str) -> bool:
        """Delete the account; False when there was none."""
        ...

    async def user_exists(self, server: str, username: str) -> bool: ...

    async def list_users(self, server: str) -> list[str]:
        """Usernames on `server`, sorted by code point."""
        ...

    async def count_users(self, server: str) -> int: ...


class MemoryUserStore:
    """`UserStore` in a dict, for tests and throwaway nodes."""

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], str] = {}

    async def create_user(self, server: str, username: str, password_record: str) -> bool:
        if (server, username) in self._users:
            return False
        self._users[server, username] = password_record
        return True

    async def get_password(self, server: str, username: str) -> str | None:
        return self._users.get((server, username))

    async def set_password(self, server: str, username: str, password_record: str) -> bool:
        if (server, username) not in self._users:
            return False
        self._users[server, username] = password_record
        return True

    async def remove_user(self, server: str, username: str) -> bool:
        return self._users.pop((server, username), None) is not None

    async def user_exists(self, server: str, username: str) -> bool:
        return (server, username) in self._users

    async def list_users(self, server: str) -> list[str]:
        return sorted(u for s, u in self._users if s == server)

    async def count_users(self, server: str) -> int:
        return sum(1 for s, _ in self._users if s == server)
