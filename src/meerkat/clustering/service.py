"""`XmppCluster`: the XMPP server on the cluster layer, started and stopped by the node.

Start: listen on the cluster port, create the tables, start discovery (the `default`
database or the node list file), wait (bounded) for the first discovery round so the node
knows the cluster's sessions before it accepts clients, then reconcile the cluster id.
From then on the session manager reads and writes the replicated `session` table, stanzas
and kicks for remote sessions travel on the links (`forwarding`), and a dead node's
sessions are cleaned up by the survivors (`cleanup`).

Tables: ``session`` and ``cluster_id`` are used; ``stream_management_session`` holds the
XEP-0198 resumption ids (resumption on another node, `resumption`) and
``stream_management_buffer`` the unacknowledged messages of resumable sessions (stored
offline by a survivor when their node dies, `sm_buffer`); ``external_component`` (bag),
``s2s_session``, ``s2s_secret`` and ``muc_online_room`` are created empty for the features to
come, so that `cets tableInfo` already shows the cluster's final shape.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..cluster import Cluster, ClusterConfig, DiscoveryBackend, RdbmsBackend, keep_greater
from ..core.clock import Clock
from ..core.hooks import HookRegistry
from ..core.router import Router
from ..core.sessions import SessionManager
from .cleanup import NodeCleanup
from .cluster_id import TABLE as CLUSTER_ID_TABLE
from .cluster_id import ClusterIdDatabase, reconcile_cluster_id
from .forwarding import SessionForwarding
from .resumption import ClusterResumption
from .session_table import TABLE as SESSION_TABLE
from .session_table import ReplicatedSessionTable
from .settings import ClusterSettings, NodeListFile, join_address
from .sm_buffer import TABLE as SM_BUFFER_TABLE
from .sm_buffer import ReplicatedSmBuffer

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
EMPTY_TABLES: dict[str, dict[str, Any]] = {
    "external_component": {"bag": True},
    "s2s_session": {},
    "s2s_secret": {"conflict_handler": keep_greater},
    "muc_online_room": {"conflict_handler": keep_greater},
}
FIRST_ROUND_TIMEOUT = 15.0
"""Seconds start-up waits for the first discovery round (connect + join) before serving."""


class XmppCluster:
    """One node's cluster membership as the XMPP server uses it."""

    def __init__(self, cluster: Cluster, sessions: ReplicatedSessionTable) -> None:
        self.cluster = cluster
        self.sessions = sessions
        self.cluster_id: str | None = None
        self.forwarding: SessionForwarding | None = None
        self.cleanup: NodeCleanup | None = None
        self.resumption: ClusterResumption | None = None
        self.sm_buffer: ReplicatedSmBuffer | None = None

    @property
    def name(self) -> str:
        return self.cluster.name

    @classmethod
    async def start(
        cls,
        settings: ClusterSettings,
        *,
        db: Any,
        sessions: SessionManager,
        router: Router,
        hooks: HookRegistry,
        clock: Clock,
        spawn: Spawn,
    ) -> XmppCluster:
        """Listen, create the tables, join the cluster; the session manager then uses it."""
        cluster = await _listen(settings)
        try:
            table = cluster.create_table(SESSION_TABLE)
            cluster.create_table(CLUSTER_ID_TABLE)
            for name, options in EMPTY_TABLES.items():
                cluster.create_table(name, **options)
            service = cls(cluster, ReplicatedSessionTable(table))
            service.resumption = ClusterResumption(cluster, sessions)
            service.sm_buffer = ReplicatedSmBuffer(
                cluster.create_table(SM_BUFFER_TABLE), router, spawn
            )
            sessions.sm_buffer = service.sm_buffer
            sessions.table = service.sessions
            service.forwarding = SessionForwarding(cluster, sessions, router, spawn)
            service.cleanup = NodeCleanup(service.sessions, hooks, spawn, clock.monotonic)
            published = settings.published_address(cluster.address)
            discovery = cluster.start_discovery(_backend(settings, db, published))
            try:
                await asyncio.wait_for(discovery.wait_for_checks(1), FIRST_ROUND_TIMEOUT)
            except TimeoutError:
                log.warning("cluster_first_discovery_round_slow timeout=%s", FIRST_ROUND_TIMEOUT)
            if db is not None:
                service.cluster_id = await reconcile_cluster_id(
                    cluster.table(CLUSTER_ID_TABLE), _as_cluster_id_db(db)
                )
        except BaseException:
            await cluster.stop()
            raise
        log.info(
            "cluster_started node=%s address=%s published=%s peers=%s cluster_id=%s",
            cluster.name,
            cluster.address,
            published,
            ",".join(p.name for p in cluster.peers()),
            service.cluster_id,
        )
        return service

    async def stop(self) -> None:
        """Leave the cluster (the peers clean up whatever sessions are left of this node)."""
        if self.cleanup is not None:
            self.cleanup.close()
        if self.sm_buffer is not None:
            self.sm_buffer.close()
        await self.cluster.stop()

    # -- what the admin API reads (`ClusterInfo`) -------------------------------------------------
    async def system_info(self) -> dict[str, Any]:
        return await self.cluster.system_info()

    def table_info(self) -> list[dict[str, Any]]:
        return self.cluster.table_info()


async def _listen(settings: ClusterSettings) -> Cluster:
    def make(port: int) -> Cluster:
        return Cluster(
            ClusterConfig(
                node_name=settings.node_name,
                secret=settings.secret,
                listen_address=join_address(settings.listen_host, port),
                cluster_name=settings.cluster_name,
            ),
            server_ssl=settings.server_ssl,
            client_ssl=settings.client_ssl,
        )

    cluster = make(settings.port)
    try:
        await cluster.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not settings.port_fallback:
            raise OSError(
                exc.errno, f"cluster port {settings.listen_address}: {exc.strerror}"
            ) from exc
        log.warning("cluster_port_in_use address=%s action=bind_free_port", settings.listen_address)
        cluster = make(0)
        await cluster.start()
    return cluster


def _backend(settings: ClusterSettings, db: Any, published: str) -> DiscoveryBackend:
    if settings.backend == "file":
        assert settings.node_list_file is not None, "validated by the config"
        return NodeListFile(settings.node_list_file, settings.port)
    return RdbmsBackend(
        db,
        cluster_name=settings.cluster_name,
        node_name=settings.node_name,
        address=published,
        expire_time=settings.node_expiry,
    )


def _as_cluster_id_db(db: Any) -> ClusterIdDatabase:
    result: ClusterIdDatabase = db
    return result
