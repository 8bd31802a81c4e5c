"""`VcardStore` on MongooseIM's `vcard` table (XML kept as UTF-8 bytes)."""

from __future__ import annotations

from meerkat.db import Database, Upsert
from meerkat.stores.types import UserKey, from_blob, to_blob

GET_VCARD = "SELECT vcard FROM vcard WHERE server = ? AND username = ?"
SET_VCARD = Upsert("vcard", ("server", "username", "vcard"), ("server", "username"), ("vcard",))
DELETE_VCARD = "DELETE FROM vcard WHERE server = ? AND username = ?"


class SqlVcardStore:
    """`VcardStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_vcard(self, user: UserKey) -> str | None:
        value = await self._db.fetchval(GET_VCARD, user[0], user[1])
        return None if value is None else from_blob(value)

    async def set_vcard(self, user: UserKey, vcard: str) -> None:
        await self._db.execute(SET_VCARD, user[0], user[1], to_blob(vcard))

    async def remove_user(self, user: UserKey) -> None:
        await self._db.execute(DELETE_VCARD, user[0], user[1])
