"""RDBMS discovery (MongooseIM mongoose_cets_discovery_rdbms) on the `discovery_nodes` table.

On every check: read the DB clock, select this cluster's rows, refresh our own row (or
register with the smallest free node number >= 1; a lost race on the unique
(cluster_name, node_num) index leaves node_num 0 until the next check), delete every
*other* row not refreshed for `expire_time` seconds (never our own), and return the rest.
Timestamps are the database server's clock, so node clocks may disagree freely.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from meerkat.db import IntegrityError

from ..wire import PROTOCOL_VERSION
from .backend import DiscoveredNode

log = logging.getLogger(__name__)

SELECT_NODES = (
    "SELECT node_name, node_num, address, updated_timestamp FROM discovery_nodes "
    "WHERE cluster_name = ?"
)
UPDATE_NODE = (
    "UPDATE discovery_nodes SET updated_timestamp = ?, address = ? "
    "WHERE node_name = ? AND cluster_name = ?"
)
DELETE_NODE_ANY_CLUSTER = "DELETE FROM discovery_nodes WHERE node_name = ?"
DELETE_NODE = "DELETE FROM discovery_nodes WHERE node_name = ? AND cluster_name = ?"
INSERT_NODE = (
    "INSERT INTO discovery_nodes (cluster_name, node_name, node_num, address, updated_timestamp) "
    "VALUES (?, ?, ?, ?, ?)"
)
DB_NOW = {
    "sqlite": "SELECT CAST(strftime('%s', 'now') AS INTEGER)",
    "pgsql": "SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
    "mysql": "SELECT UNIX_TIMESTAMP()",
}


class DiscoveryDatabase(Protocol):
    """The part of `meerkat.db.Database` this backend uses."""

    dialect: Any

    async def execute(self, sql: str, *params: object) -> int: ...

    async def fetchall(self, sql: str, *params: object) -> list[Any]: ...

    async def fetchval(self, sql: str, *params: object) -> object: ...


class RdbmsBackend:
    """One node's view of `discovery_nodes`; `node_num` is published after each check."""

    def __init__(
        self,
        db: DiscoveryDatabase,
        *,
        cluster_name: str,
        node_name: str,
        address: str,
        expire_time: int = 3600,
    ) -> None:
        self.db = db
        # COMPAT: like MongooseIM's "<name>-<cets version>", nodes speaking another cluster
        # protocol version do not see each other.
        self.cluster_name = f"{cluster_name}-{PROTOCOL_VERSION}"
        self.node_name = node_name
        self.address = address
        self.expire_time = expire_time
        self.node_num = 0
        self.last_removed: list[str] = []

    async def db_now(self) -> int:
        name = getattr(self.db.dialect, "name", "sqlite")
        return int(str(await self.db.fetchval(DB_NOW.get(name, DB_NOW["sqlite"]))))

    async def get_nodes(self) -> list[DiscoveredNode]:
        """Raises the database's error (e.g. DatabaseUnavailable) on outage."""
        now = await self.db_now()
        rows = [tuple(r) for r in await self.db.fetchall(SELECT_NODES, self.cluster_name)]
        mine = [r for r in rows if r[0] == self.node_name]
        rows = [r for r in rows if r[0] != self.node_name]
        if mine:
            await self.db.execute(UPDATE_NODE, now, self.address, self.node_name, self.cluster_name)
            self.node_num = int(mine[0][1])
        else:
            used = {int(r[1]) for r in rows}
            num = next(n for n in range(1, len(used) + 2) if n not in used)
            await self.db.execute(DELETE_NODE_ANY_CLUSTER, self.node_name)
            try:
                await self.db.execute(
                    INSERT_NODE, self.cluster_name, self.node_name, num, self.address, now
                )
                self.node_num = num
            except IntegrityError as exc:  # another node took this number meanwhile
                log.warning("cets_discovery_insert_failed node_num=%d error=%r", num, exc)
                self.node_num = 0
        rows.append((self.node_name, self.node_num, self.address, now))
        expired = [r for r in rows if r[0] != self.node_name and now - int(r[3]) > self.expire_time]
        self.last_removed = []
        for r in expired:
            await self.db.execute(DELETE_NODE, r[0], self.cluster_name)
            self.last_removed.append(str(r[0]))
        if expired:
            log.warning("cets_expired_nodes removed=%s", self.last_removed)
        expired_names = set(self.last_removed)
        return sorted(
            (DiscoveredNode(str(r[0]), str(r[2])) for r in rows if r[0] not in expired_names),
            key=lambda n: n.name or "",
        )
