"""The cluster id (MongooseIM mongoose_cluster_id): one UUID naming the whole cluster.

Kept twice: in the replicated ``cluster_id`` table (so every running node has it without a
query) and in the database's ``mongoose_cluster_id`` table (so it survives a full restart).
At start, after this node has joined whoever discovery found, the two are reconciled: one
missing is copied from the other; both missing, a new UUIDv4 is stored, first in the
database, where the primary key lets exactly one of several nodes starting at once win; the
two differing is a conflict that is logged and settled for the database's value, the one
that outlives the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any, Protocol

from ..cluster import ReplicatedTable
from ..db import IntegrityError

log = logging.getLogger(__name__)

TABLE = "cluster_id"
KEY = ("cluster_id",)
SELECT_ID = "SELECT v FROM mongoose_cluster_id WHERE k = 'cluster_id'"
INSERT_ID = "INSERT INTO mongoose_cluster_id (k, v) VALUES ('cluster_id', ?)"


class ClusterIdDatabase(Protocol):
    """The part of `meerkat.db.Database` used here."""

    async def execute(self, sql: Any, *params: object) -> int: ...

    async def fetchval(self, sql: Any, *params: object) -> Any: ...


async def _stored(db: ClusterIdDatabase) -> str | None:
    value = await db.fetchval(SELECT_ID)
    return str(value) if value else None


async def _store(db: ClusterIdDatabase, value: str) -> str:
    """Insert `value` unless a row exists; returns the id the database holds afterwards."""
    with contextlib.suppress(IntegrityError):  # another node stored one first
        await db.execute(INSERT_ID, value)
    stored = await _stored(db)
    return stored if stored is not None else value


async def reconcile_cluster_id(table: ReplicatedTable, db: ClusterIdDatabase) -> str:
    """The cluster id, made equal in the table and the database."""
    cached = table.get(KEY)
    cached = str(cached) if cached else None
    stored = await _stored(db)
    if stored is None:
        stored = await _store(db, cached or str(uuid.uuid4()))
    if cached is not None and cached != stored:
        log.error("cluster_id_conflict table=%s database=%s using=database", cached, stored)
    if cached != stored:
        await table.insert_serial(KEY, stored)
    return stored
