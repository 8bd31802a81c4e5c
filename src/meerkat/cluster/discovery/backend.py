"""The discovery backend protocol and the in-memory backend used by tests and tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import ClusterError


@dataclass(frozen=True, slots=True)
class DiscoveredNode:
    """A node a backend knows about. `name` is None when only an address is known (file)."""

    name: str | None
    address: str


class DiscoveryBackend(Protocol):
    """Where nodes find each other. `get_nodes` runs once per discovery check."""

    async def get_nodes(self) -> list[DiscoveredNode]: ...


class MemoryRegistry:
    """A shared in-process registry; `backend(name, address)` gives each node its view."""

    def __init__(self) -> None:
        self.nodes: dict[str, str] = {}
        self.failing = False

    def backend(self, name: str, address: str) -> MemoryBackend:
        return MemoryBackend(self, name, address)


class MemoryBackend:
    """Registers itself on every call and returns every registered node."""

    def __init__(self, registry: MemoryRegistry, name: str, address: str) -> None:
        self.registry = registry
        self.name = name
        self.address = address

    async def get_nodes(self) -> list[DiscoveredNode]:
        if self.registry.failing:
            raise ClusterError("memory discovery backend set to fail")
        self.registry.nodes[self.name] = self.address
        return [DiscoveredNode(n, a) for n, a in sorted(self.registry.nodes.items())]
