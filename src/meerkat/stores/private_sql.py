"""`PrivateStore` on MongooseIM's `private_storage` table (XML kept as UTF-8 bytes)."""

from __future__ import annotations

from collections.abc import Mapping

from meerkat.db import Database, Upsert
from meerkat.stores.types import UserKey, from_blob, to_blob

GET_DATA = "SELECT data FROM private_storage WHERE server = ? AND username = ? AND namespace = ?"
SET_DATA = Upsert(
    "private_storage",
    ("server", "username", "namespace", "data"),
    ("server", "username", "namespace"),
    ("data",),
)
DELETE_USER = "DELETE FROM private_storage WHERE server = ? AND username = ?"


class SqlPrivateStore:
    """`PrivateStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user: UserKey, namespace: str) -> str | None:
        value = await self._db.fetchval(GET_DATA, user[0], user[1], namespace)
        return None if value is None else from_blob(value)

    async def set_many(self, user: UserKey, items: Mapping[str, str]) -> None:
        if not items:
            return
        async with self._db.transaction() as tx:
            for namespace, xml in items.items():
                await tx.execute(SET_DATA, user[0], user[1], namespace, to_blob(xml))

    async def remove_user(self, user: UserKey) -> None:
        await self._db.execute(DELETE_USER, user[0], user[1])
