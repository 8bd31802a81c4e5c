"""The `Cluster` facade the server wires: a node, its tables, discovery and status."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .discovery.backend import DiscoveryBackend
from .discovery.loop import DiscoveryConfig, DiscoveryLoop
from .link import LinkConfig, TcpTransport, Transport
from .node import CallHandler, ClusterNode, EventListener, NodeEvent, NodeId, SendHandler
from .status import system_info, table_info
from .table import ConflictHandler, ReplicatedTable
from .tables import TableManager


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    node_name: str
    """This node's configured name (unique in the cluster)."""
    secret: bytes
    """Shared cluster secret; every node must have the same."""
    listen_address: str = "127.0.0.1:4370"
    """host:port of the cluster port (port 0 picks a free one)."""
    cluster_name: str = "meerkat"
    """Nodes only link with nodes of the same cluster name."""
    link: LinkConfig = field(default_factory=LinkConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    call_timeout: float = 10.0


class Cluster:
    """One clustered node: `start(backend)`, tables, messaging, node events, `stop()`."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        transport: Transport | None = None,
        clock: Clock | None = None,
        boot_id: str | None = None,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.node = ClusterNode(
            config.node_name,
            config.listen_address,
            config.secret,
            transport=transport
            or TcpTransport(
                server_ssl=server_ssl,
                client_ssl=client_ssl,
                connect_timeout=config.link.connect_timeout,
            ),
            clock=clock,
            cluster=config.cluster_name,
            boot_id=boot_id,
            link_config=config.link,
            call_timeout=config.call_timeout,
        )
        self.tables = TableManager(self.node)
        self.discovery: DiscoveryLoop | None = None
        self._discovery_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def id(self) -> NodeId:
        return self.node.id

    @property
    def address(self) -> str:
        """The bound cluster address (publish this to discovery)."""
        return self.node.address

    async def start(self, backend: DiscoveryBackend | None = None) -> None:
        """Listen, then run discovery with `backend` (None: a lone node, join by hand)."""
        await self.node.start()
        if backend is not None:
            self.start_discovery(backend)

    def start_discovery(self, backend: DiscoveryBackend) -> DiscoveryLoop:
        """Start discovery (after `start`, once the backend knows our bound address)."""
        self.discovery = DiscoveryLoop(self.tables, backend, self.config.discovery)
        self._discovery_task = self.node.spawn(self.discovery.run(), "discovery")
        return self.discovery

    async def stop(self) -> None:
        """Stop discovery, close every link, cancel and await every task."""
        if self._discovery_task is not None:
            self._discovery_task.cancel()
            await asyncio.gather(self._discovery_task, return_exceptions=True)
        await self.node.stop()

    # -- tables ------------------------------------------------------------------

    def create_table(
        self,
        name: str,
        *,
        bag: bool = False,
        conflict_handler: ConflictHandler | None = None,
    ) -> ReplicatedTable:
        """A new replicated table; discovery joins it with the other nodes' copies."""
        table = self.tables.create_table(name, bag=bag, conflict_handler=conflict_handler)
        if self.discovery is not None:
            self.discovery.trigger()
        return table

    def table(self, name: str) -> ReplicatedTable:
        return self.tables.table(name)

    def delete_table(self, name: str) -> None:
        self.tables.delete_table(name)

    # -- messaging and events (see ClusterNode) ------------------------------------

    def send(self, peer: str | NodeId, channel: str, payload: Any) -> None:
        self.node.send(peer, channel, payload)

    async def call(
        self, peer: str | NodeId, channel: str, payload: Any, timeout: float | None = -1.0
    ) -> Any:
        return await self.node.call(peer, channel, payload, timeout)

    def on_send(self, channel: str, handler: SendHandler) -> None:
        self.node.on_send(channel, handler)

    def on_call(self, channel: str, handler: CallHandler) -> None:
        self.node.on_call(channel, handler)

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        return self.node.subscribe(listener)

    def events(self) -> AsyncIterator[NodeEvent]:
        return self.node.events()

    def peers(self) -> list[NodeId]:
        return self.node.peers()

    async def system_info(self) -> dict[str, Any]:
        """`cets systemInfo`."""
        return await system_info(self)

    def table_info(self) -> list[dict[str, Any]]:
        """`cets tableInfo`."""
        return table_info(self)
