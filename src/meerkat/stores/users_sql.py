"""`UserStore` on the `users` table (MongooseIM's layout).

COMPAT: like MongooseIM, a SCRAM record goes to `pass_details` with `password` = '', and
a plain password to `password` with `pass_details` NULL; so a MongooseIM `users` table
can be read as is. Login is one primary-key lookup (`GET_PASSWORD`).
"""

from __future__ import annotations

from meerkat.db import Database, InsertIgnore

INSERT_USER = InsertIgnore(
    "users", ("server", "username", "password", "pass_details"), key=("server", "username")
)
GET_PASSWORD = "SELECT password, pass_details FROM users WHERE server = ? AND username = ?"
SET_PASSWORD = "UPDATE users SET password = ?, pass_details = ? WHERE server = ? AND username = ?"
DELETE_USER = "DELETE FROM users WHERE server = ? AND username = ?"
USER_EXISTS = "SELECT 1 FROM users WHERE server = ? AND username = ?"
LIST_USERS = "SELECT username FROM users WHERE server = ?"
COUNT_USERS = "SELECT COUNT(*) FROM users WHERE server = ?"

_SCRAM_PREFIXES = ("==MULTI_SCRAM==", "==SCRAM==")


def _columns(record: str) -> tuple[str, str | None]:
    """(password, pass_details) for a record."""
    if record.startswith(_SCRAM_PREFIXES):
        return "", record
    return record, None


class SqlUserStore:
    """`UserStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(self, server: str, username: str, password_record: str) -> bool:
        password, details = _columns(password_record)
        return await self._db.execute(INSERT_USER, server, username, password, details) > 0

    async def get_password(self, server: str, username: str) -> str | None:
        row = await self._db.fetchone(GET_PASSWORD, server, username)
        if row is None:
            return None
        password, details = row
        return str(details if details is not None else password)

    async def set_password(self, server: str, username: str, password_record: str) -> bool:
        password, details = _columns(password_record)
        changed = await self._db.execute(SET_PASSWORD, password, details, server, username)
        if changed:
            return True
        # MySQL counts only rows whose value changed: setting the same record reports 0.
        return await self.user_exists(server, username)

    async def remove_user(self, server: str, username: str) -> bool:
        return await self._db.execute(DELETE_USER, server, username) > 0

    async def user_exists(self, server: str, username: str) -> bool:
        return await self._db.fetchone(USER_EXISTS, server, username) is not None

    async def list_users(self, server: str) -> list[str]:
        # Sorted here, not by ORDER BY: each database collates differently.
        return sorted(str(row[0]) for row in await self._db.fetchall(LIST_USERS, server))

    async def count_users(self, server: str) -> int:
        return int(await self._db.fetchval(COUNT_USERS, server))
