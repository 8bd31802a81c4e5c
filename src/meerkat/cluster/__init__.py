"""The cluster layer (CETS design): links, membership, replicated tables, discovery.

It knows nothing of XMPP. The server creates one `Cluster`, starts it with a discovery
backend, creates its tables, and routes messages on named channels.
"""

from .clock import Clock, ManualClock, SystemClock
from .discovery import (
    DiscoveredNode,
    DiscoveryBackend,
    DiscoveryConfig,
    FileBackend,
    MemoryRegistry,
    RdbmsBackend,
)
from .errors import (
    AuthenticationFailed,
    CallTimeout,
    ClusterError,
    HandshakeError,
    JoinError,
    LeaderOpFailed,
    PeerUnavailable,
    ProtocolError,
    RemoteError,
)
from .facade import Cluster, ClusterConfig
from .link import LinkConfig, TcpTransport
from .memnet import MemoryNetwork
from .node import ClusterNode, NodeEvent, NodeEventKind, NodeId
from .store import Key, Row
from .table import DownInfo, ReplicatedTable, keep_greater

__all__ = [
    "AuthenticationFailed",
    "CallTimeout",
    "Clock",
    "Cluster",
    "ClusterConfig",
    "ClusterError",
    "ClusterNode",
    "DiscoveredNode",
    "DiscoveryBackend",
    "DiscoveryConfig",
    "DownInfo",
    "FileBackend",
    "HandshakeError",
    "JoinError",
    "Key",
    "LeaderOpFailed",
    "LinkConfig",
    "ManualClock",
    "MemoryNetwork",
    "MemoryRegistry",
    "NodeEvent",
    "NodeEventKind",
    "NodeId",
    "PeerUnavailable",
    "ProtocolError",
    "RdbmsBackend",
    "RemoteError",
    "ReplicatedTable",
    "Row",
    "SystemClock",
    "TcpTransport",
    "keep_greater",
]
