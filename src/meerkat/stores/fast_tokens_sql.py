"""`FastTokenStore` on the `fast_auth_token` table (MongooseIM's layout: one row per user and
user-agent id with 'current' and 'new' slots).

The *_token columns hold base64 of the token's key (SHA-256), never the token. Mechanisms are
stored as small integers (`MECHANISM_IDS`, ours).
"""

from __future__ import annotations

import base64
from typing import Any

from meerkat.db import Database, Upsert
from meerkat.stores.fast_tokens import ClientTokens, TokenSlot
from meerkat.stores.types import UserKey

MECHANISM_IDS: dict[str, int] = {
    "HT-SHA-256-NONE": 1,
    "HT-SHA-256-UNIQ": 2,
    "HT-SHA-256-EXPR": 3,
    "HT-SHA-256-ENDP": 4,
}
_MECHANISMS = {v: k for k, v in MECHANISM_IDS.items()}

GET_TOKENS = (
    "SELECT current_token, current_expire, current_count, current_mech_id, "
    "new_token, new_expire, new_count, new_mech_id "
    "FROM fast_auth_token WHERE server = ? AND username = ? AND user_agent_id = ?"
)
SET_NEW = Upsert(
    "fast_auth_token",
    ("server", "username", "user_agent_id", "new_token", "new_expire", "new_count", "new_mech_id"),
    ("server", "username", "user_agent_id"),
    ("new_token", "new_expire", "new_count", "new_mech_id"),
)
PROMOTE_NEW = (
    "UPDATE fast_auth_token SET current_token = new_token, current_expire = new_expire, "
    "current_count = new_count, current_mech_id = new_mech_id, new_token = NULL, "
    "new_expire = NULL, new_count = NULL, new_mech_id = NULL "
    "WHERE server = ? AND username = ? AND user_agent_id = ? AND new_token IS NOT NULL"
)
DELETE_CLIENT = (
    "DELETE FROM fast_auth_token WHERE server = ? AND username = ? AND user_agent_id = ?"
)
DELETE_USER = "DELETE FROM fast_auth_token WHERE server = ? AND username = ?"


def _slot(token: Any, expire: Any, count: Any, mech_id: Any) -> TokenSlot | None:
    if token is None or mech_id is None or int(mech_id) not in _MECHANISMS:
        return None
    return TokenSlot(
        key=base64.b64decode(str(token)),
        mechanism=_MECHANISMS[int(mech_id)],
        expire=int(expire),
        count=int(count or 0),
    )


class SqlFastTokenStore:
    """`FastTokenStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_tokens(self, user: UserKey, agent_id: str) -> ClientTokens:
        row = await self._db.fetchone(GET_TOKENS, user[0], user[1], agent_id)
        if row is None:
            return ClientTokens()
        return ClientTokens(_slot(*row[0:4]), _slot(*row[4:8]))

    async def set_new(self, user: UserKey, agent_id: str, slot: TokenSlot) -> None:
        await self._db.execute(
            SET_NEW,
            user[0],
            user[1],
            agent_id,
            base64.b64encode(slot.key).decode(),
            slot.expire,
            slot.count,
            MECHANISM_IDS[slot.mechanism],
        )

    async def promote_new(self, user: UserKey, agent_id: str) -> None:
        await self._db.execute(PROMOTE_NEW, user[0], user[1], agent_id)

    async def remove_client(self, user: UserKey, agent_id: str) -> None:
        await self._db.execute(DELETE_CLIENT, user[0], user[1], agent_id)

    async def remove_user(self, user: UserKey) -> None:
        await self._db.execute(DELETE_USER, user[0], user[1])


__all__ = ["MECHANISM_IDS", "SqlFastTokenStore"]
