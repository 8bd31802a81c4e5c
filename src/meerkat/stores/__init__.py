"""Per-feature storage: one small Protocol per feature, a memory and an SQL implementation.

Modules depend on the Protocols (`UserStore`, `RosterStore`, ...). Build the SQL ones from
an open `meerkat.db.Database` (`SqlRosterStore(db)`), or get all of them at once with
`sql_stores(db)` / `memory_stores()`. Stores deal in plain values and XML *strings*; they
never parse XML. Users are `UserKey(server, username)` (already normalised).
"""

from __future__ import annotations

from dataclasses import dataclass

from meerkat.db import Database
from meerkat.stores.fast_tokens import FastTokenStore, MemoryFastTokenStore
from meerkat.stores.fast_tokens_sql import SqlFastTokenStore
from meerkat.stores.last import LastStore, MemoryLastStore
from meerkat.stores.last_sql import SqlLastStore
from meerkat.stores.offline import MemoryOfflineStore, OfflineMessage, OfflineStore
from meerkat.stores.offline_sql import SqlOfflineStore
from meerkat.stores.private import MemoryPrivateStore, PrivateStore
from meerkat.stores.private_sql import SqlPrivateStore
from meerkat.stores.roster import Ask, MemoryRosterStore, RosterItem, RosterStore, Subscription
from meerkat.stores.roster_sql import SqlRosterStore
from meerkat.stores.types import UserKey
from meerkat.stores.users import MemoryUserStore, UserStore
from meerkat.stores.users_sql import SqlUserStore
from meerkat.stores.vcard import MemoryVcardStore, VcardStore
from meerkat.stores.vcard_sql import SqlVcardStore


@dataclass(frozen=True, slots=True)
class Stores:
    """One of each store, as the server wires them into modules."""

    users: UserStore
    roster: RosterStore
    offline: OfflineStore
    last: LastStore
    vcard: VcardStore
    private: PrivateStore
    fast_tokens: FastTokenStore

    async def close(self) -> None:
        """Write what the stores still hold in memory (last activity); before the pool closes."""
        await self.last.close()

    async def remove_user(self, server: str, username: str) -> None:
        """Delete everything stored about an account, the account last."""
        user = UserKey(server, username)
        for store in (self.roster, self.offline, self.last, self.vcard, self.private):
            await store.remove_user(user)
        await self.users.remove_user(server, username)


def memory_stores() -> Stores:
    """Fresh in-memory stores."""
    return Stores(
        MemoryUserStore(),
        MemoryRosterStore(),
        MemoryOfflineStore(),
        MemoryLastStore(),
        MemoryVcardStore(),
        MemoryPrivateStore(),
        MemoryFastTokenStore(),
    )


def sql_stores(db: Database) -> Stores:
    """SQL stores sharing one database pool."""
    return Stores(
        SqlUserStore(db),
        SqlRosterStore(db),
        SqlOfflineStore(db),
        SqlLastStore(db),
        SqlVcardStore(db),
        SqlPrivateStore(db),
        SqlFastTokenStore(db),
    )


__all__ = [
    "Ask",
    "FastTokenStore",
    "LastStore",
    "MemoryFastTokenStore",
    "MemoryLastStore",
    "MemoryOfflineStore",
    "MemoryPrivateStore",
    "MemoryRosterStore",
    "MemoryUserStore",
    "MemoryVcardStore",
    "OfflineMessage",
    "OfflineStore",
    "PrivateStore",
    "RosterItem",
    "RosterStore",
    "SqlFastTokenStore",
    "SqlLastStore",
    "SqlOfflineStore",
    "SqlPrivateStore",
    "SqlRosterStore",
    "SqlUserStore",
    "SqlVcardStore",
    "Stores",
    "Subscription",
    "UserKey",
    "UserStore",
    "VcardStore",
    "memory_stores",
    "sql_stores",
]
