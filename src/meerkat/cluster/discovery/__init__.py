"""Discovery: backends that list nodes, and the loop that connects and joins them."""

from .backend import DiscoveredNode, DiscoveryBackend, MemoryBackend, MemoryRegistry
from .file import FileBackend, parse_node_list
from .loop import DiscoveryConfig, DiscoveryLoop, DiscoveryState
from .rdbms import RdbmsBackend

__all__ = [
    "DiscoveredNode",
    "DiscoveryBackend",
    "DiscoveryConfig",
    "DiscoveryLoop",
    "DiscoveryState",
    "FileBackend",
    "MemoryBackend",
    "MemoryRegistry",
    "RdbmsBackend",
    "parse_node_list",
]
