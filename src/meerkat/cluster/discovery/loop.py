"""The discovery loop (CETS cets_discovery): find nodes, connect, join every table.

Each check asks the backend for nodes, dials every discovered node that is not
connected (a failure marks it unavailable), then joins every table with every connected
discovered node whose segment differs from ours. Joins are serialised cluster-wide by
the table lock, so many nodes starting at once converge one join at a time.

Hard parts: the backend may be slow or failing (checks never overlap; a failed check
is retried soon); a node that comes up triggers an immediate check; a healed netsplit
is only noticed by dialing again, so after a node-down checks are frequent for a while.

Schedule (`DiscoveryConfig`): after an error `error_interval`; during the initial phase
`initial_interval`; within `nodedown_window` of a node going down
`after_nodedown_interval`; otherwise `regular_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from ..clock import with_timeout
from ..errors import ClusterError, JoinError, PeerUnavailable
from ..node import NodeEvent, NodeEventKind, NodeId
from ..tables import TableManager
from .backend import DiscoveredNode, DiscoveryBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    initial_interval: float = 5.0
    """Seconds between checks during the initial phase."""
    initial_phase: float = 300.0
    """Length of the initial phase in seconds."""
    regular_interval: float = 30.0
    """Seconds between checks after the initial phase."""
    error_interval: float = 1.0
    """Retry delay after a failed backend call."""
    after_nodedown_interval: float = 5.0
    """Seconds between checks shortly after a node went down (to notice a healed split)."""
    nodedown_window: float = 30.0
    """How long after a node-down the short interval applies."""


@dataclass(slots=True)
class DiscoveryState:
    """What `cets systemInfo` reads."""

    discovered: list[DiscoveredNode] = field(default_factory=list)
    unavailable: set[str] = field(default_factory=set)
    last_ok: bool | None = None
    join_results: dict[tuple[str, str], str] = field(default_factory=dict)
    checks: int = 0


class DiscoveryLoop:
    """Runs checks until cancelled; owned by the `Cluster` facade."""

    def __init__(
        self, manager: TableManager, backend: DiscoveryBackend, config: DiscoveryConfig
    ) -> None:
        self.manager = manager
        self.node = manager.node
        self.backend = backend
        self.config = config
        self.state = DiscoveryState()
        self._wake = asyncio.Event()
        self._started = self.node.clock.monotonic()
        self._last_nodedown: float | None = None
        self._checked = asyncio.Condition()
        self.node.subscribe(self._on_event)

    def _on_event(self, event: NodeEvent) -> None:
        if event.kind is NodeEventKind.UP:
            self.state.unavailable.discard(event.node.name)
            self._wake.set()
        else:
            self._last_nodedown = self.node.clock.monotonic()
            if self._is_discovered(event.node.name):
                self.state.unavailable.add(event.node.name)

    def trigger(self) -> None:
        """Run a check now (table added, node up)."""
        self._wake.set()

    def discovered_names(self) -> list[str]:
        names = set()
        for dn in self.state.discovered:
            name = dn.name or (
                self.node.name if dn.address == self.node.address else self.node.name_at(dn.address)
            )
            names.add(name if name is not None else dn.address)
        return sorted(names)

    def _is_discovered(self, name: str) -> bool:
        return name in self.discovered_names()

    def next_interval(self) -> float:
        c = self.config
        now = self.node.clock.monotonic()
        if self.state.last_ok is False:
            return c.error_interval
        if now - self._started < c.initial_phase:
            return c.initial_interval
        if self._last_nodedown is not None and now - self._last_nodedown < c.nodedown_window:
            return c.after_nodedown_interval
        return c.regular_interval

    async def run(self) -> None:
        self.manager.discovery_running = True
        try:
            while True:
                self._wake.clear()
                await self.check()
                with contextlib.suppress(TimeoutError):
                    await with_timeout(self.node.clock, self._wake.wait(), self.next_interval())
        finally:
            self.manager.discovery_running = False

    async def wait_for_checks(self, count: int) -> None:
        """Wait until `count` checks have completed in total (tests, start-up)."""
        async with self._checked:
            await self._checked.wait_for(lambda: self.state.checks >= count)

    async def check(self) -> None:
        try:
            nodes = await self.backend.get_nodes()
        except Exception as exc:  # any backend failure: DatabaseUnavailable, OSError, ...
            log.warning("cets_discovery_get_nodes_failed error=%r", exc)
            self.state.last_ok = False
        else:
            self.state.last_ok = True
            self.state.discovered = nodes
            await self._connect_all(nodes)
            await self._try_joining()
            known = set(self.discovered_names())
            self.state.unavailable &= known
        async with self._checked:
            self.state.checks += 1
            self._checked.notify_all()

    async def _connect_all(self, nodes: list[DiscoveredNode]) -> None:
        todo = [
            dn
            for dn in nodes
            if dn.name != self.node.name
            and dn.address != self.node.address
            and not (dn.name and self.node.is_up(dn.name))
        ]
        results = await asyncio.gather(
            *(self.node.connect(dn.address) for dn in todo), return_exceptions=True
        )
        for dn, result in zip(todo, results, strict=True):
            key = dn.name or dn.address
            if isinstance(result, NodeId):  # (our own id when the address was ours)
                self.state.unavailable.discard(key)
                self.state.unavailable.discard(result.name)
            elif isinstance(result, PeerUnavailable):
                if not (dn.name and self.node.is_up(dn.name)):  # a late failure is ignored
                    self.state.unavailable.add(key)
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.error("cets_discovery_connect_crashed address=%s", dn.address, exc_info=result)
                self.state.unavailable.add(key)

    async def _try_joining(self) -> None:
        discovered = set(self.discovered_names())
        for peer in self.node.peers():
            if peer.name not in discovered:
                continue
            for name, table in list(self.manager.tables.items()):
                if peer in table.peers:
                    self.state.join_results[(peer.name, name)] = "joined"
                    continue
                try:
                    result = await self.manager.join(name, peer)
                except JoinError as exc:
                    result = f"error: {exc.reason}"
                except ClusterError as exc:
                    result = f"error: {exc}"
                previous = self.state.join_results.get((peer.name, name))
                if previous != result:
                    log.info(
                        "cets_discovery_join table=%s peer=%s result=%s", name, peer.name, result
                    )
                self.state.join_results[(peer.name, name)] = result
