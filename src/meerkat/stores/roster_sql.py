"""`RosterStore` on MongooseIM's `rosterusers`, `rostergroups` and `roster_version`.

COMPAT: subscription and ask use MongooseIM's one-letter codes, so its data reads as is:
subscription N(one) T(o) F(rom) B(oth); ask N(one) O(ut) I(n) B(oth), and the legacy S
(subscribe, read as "out") and U (unsubscribe, read as "none").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from meerkat.db import Database, Transaction, Upsert
from meerkat.stores.roster import Ask, RosterItem, Subscription, normalised
from meerkat.stores.types import UserKey

GET_ITEMS = (
    "SELECT jid, nick, subscription, ask, askmessage, approved FROM rosterusers "
    "WHERE server = ? AND username = ?"
)
GET_GROUPS = "SELECT jid, grp FROM rostergroups WHERE server = ? AND username = ?"
GET_ITEM = (
    "SELECT jid, nick, subscription, ask, askmessage, approved FROM rosterusers "
    "WHERE server = ? AND username = ? AND jid = ?"
)
GET_ITEM_GROUPS = "SELECT jid, grp FROM rostergroups WHERE server = ? AND username = ? AND jid = ?"
UPSERT_ITEM = Upsert(
    "rosterusers",
    ("server", "username", "jid", "nick", "subscription", "ask", "askmessage", "approved"),
    key=("server", "username", "jid"),
    update=("nick", "subscription", "ask", "askmessage", "approved"),
)
DELETE_ITEM = "DELETE FROM rosterusers WHERE server = ? AND username = ? AND jid = ?"
DELETE_ITEM_GROUPS = "DELETE FROM rostergroups WHERE server = ? AND username = ? AND jid = ?"
INSERT_GROUP = "INSERT INTO rostergroups (server, username, jid, grp) VALUES (?, ?, ?, ?)"
GET_VERSION = "SELECT version FROM roster_version WHERE server = ? AND username = ?"
UPSERT_VERSION = Upsert(
    "roster_version", ("server", "username", "version"), ("server", "username"), ("version",)
)
DELETE_ITEMS = "DELETE FROM rosterusers WHERE server = ? AND username = ?"
DELETE_GROUPS = "DELETE FROM rostergroups WHERE server = ? AND username = ?"
DELETE_VERSION = "DELETE FROM roster_version WHERE server = ? AND username = ?"

_SUB_CODES: dict[str, str] = {"none": "N", "to": "T", "from": "F", "both": "B"}
_SUB_NAMES: dict[str, Subscription] = {"N": "none", "T": "to", "F": "from", "B": "both"}
_ASK_CODES: dict[str, str] = {"none": "N", "out": "O", "in": "I", "both": "B"}
_ASK_NAMES: dict[str, Ask] = {"N": "none", "O": "out", "I": "in", "B": "both", "S": "out"}


def _item(row: tuple[Any, ...], groups: list[str]) -> RosterItem:
    jid, nick, sub, ask, askmessage, approved = row
    return RosterItem(
        jid=str(jid),
        name=str(nick),
        subscription=_SUB_NAMES.get(str(sub).strip(), "none"),
        ask=_ASK_NAMES.get(str(ask).strip(), "none"),
        groups=tuple(groups),
        approved=bool(approved),
        askmessage=str(askmessage),
    )


class SqlRosterStore:
    """`RosterStore` on any `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_roster(self, user: UserKey) -> list[RosterItem]:
        server, username = user
        # Two reads, not a JOIN: items without groups stay simple and rows do not multiply.
        rows = await self._db.fetchall(GET_ITEMS, server, username)
        if not rows:
            return []
        groups: defaultdict[str, list[str]] = defaultdict(list)
        for jid, grp in await self._db.fetchall(GET_GROUPS, server, username):
            groups[str(jid)].append(str(grp))
        items = [_item(row, groups[str(row[0])]) for row in rows]
        return sorted(items, key=lambda item: item.jid)

    async def get_item(self, user: UserKey, contact_jid: str) -> RosterItem | None:
        server, username = user
        row = await self._db.fetchone(GET_ITEM, server, username, contact_jid)
        if row is None:
            return None
        rows = await self._db.fetchall(GET_ITEM_GROUPS, server, username, contact_jid)
        return _item(row, [str(grp) for _, grp in rows])

    async def set_item(self, user: UserKey, item: RosterItem, version: str | None = None) -> None:
        server, username = user
        item = normalised(item)
        async with self._db.transaction() as tx:
            await tx.execute(
                UPSERT_ITEM,
                server,
                username,
                item.jid,
                item.name,
                _SUB_CODES[item.subscription],
                _ASK_CODES[item.ask],
                item.askmessage,
                int(item.approved),
            )
            await tx.execute(DELETE_ITEM_GROUPS, server, username, item.jid)
            for group in item.groups:
                await tx.execute(INSERT_GROUP, server, username, item.jid, group)
            await self._write_version(tx, user, version)

    async def remove_item(
        self, user: UserKey, contact_jid: str, version: str | None = None
    ) -> bool:
        server, username = user
        async with self._db.transaction() as tx:
            removed = await tx.execute(DELETE_ITEM, server, username, contact_jid)
            await tx.execute(DELETE_ITEM_GROUPS, server, username, contact_jid)
            await self._write_version(tx, user, version)
        return removed > 0

    @staticmethod
    async def _write_version(tx: Transaction, user: UserKey, version: str | None) -> None:
        if version is not None:
            await tx.execute(UPSERT_VERSION, user[0], user[1], version)

    async def get_version(self, user: UserKey) -> str | None:
        value = await self._db.fetchval(GET_VERSION, user[0], user[1])
        return None if value is None else str(value)

    async def set_version(self, user: UserKey, version: str) -> None:
        await self._db.execute(UPSERT_VERSION, user[0], user[1], version)

    async def remove_user(self, user: UserKey) -> None:
        async with self._db.transaction() as tx:
            for query in (DELETE_ITEMS, DELETE_GROUPS, DELETE_VERSION):
                await tx.execute(query, user[0], user[1])
