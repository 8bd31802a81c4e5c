"""The cluster layer (CETS design): links, membership, replicated tables, discovery.

It knows nothing of XMPP. Typical wiring::

    cluster = Cluster(ClusterConfig(node_name="meerkat@host1", secret=secret,
                                    listen_address="0.0.0.0:4370"))
    await cluster.start()                                   # listen
    cluster.start_discovery(RdbmsBackend(db, cluster_name="meerkat",
                                         node_name=cluster.name, address="10.0.0.1:4370"))
    sessions = cluster.create_table("session")              # joined automatically
    await sessions.insert(("example.com", "alice", "phone", sid), {...})
    sessions.match(("example.com", "alice"))                # local read, key order
    sessions.on_node_down(lambda info: sessions.delete_where(owned_by(info.node.name)))
    cluster.on_send("route", deliver)                       # deliver(peer: NodeId, payload)
    cluster.send("meerkat@host2", "route", [sid, stanza_bytes])
    cluster.subscribe(on_node_event)                        # NodeEvent(kind, node, reason)
    await cluster.system_info(); cluster.table_info()       # cets systemInfo / tableInfo
    await cluster.stop()
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
