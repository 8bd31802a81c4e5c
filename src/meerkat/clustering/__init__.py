"""XMPP on the cluster: the glue between the session manager and `meerkat.cluster`.

`meerkat.cluster` moves messages and keeps replicated tables without knowing XMPP; this
package gives them their XMPP meaning (DESIGN §3, §6):

- `ReplicatedSessionTable`: the session manager's table, replicated (``session``);
- `SessionForwarding`: stanzas and kicks for sessions on other nodes (``route``, ``kick``);
- `NodeCleanup`: a dead node's sessions deleted and their hooks run once per segment;
- `reconcile_cluster_id`: the cluster id in the ``cluster_id`` table and the database;
- `ClusterResumption`: the replicated XEP-0198 `SmTable` and session take-over across nodes;
- `ReplicatedSmBuffer`: unacknowledged XEP-0198 messages, stored offline when their node dies;
- `cluster_settings` + `XmppCluster.start`: all of it from `[internal_databases.cets]`.

The server does::

    settings = cluster_settings(config)          # None: standalone
    xc = await XmppCluster.start(settings, db=db, sessions=sm, router=router, hooks=hooks,
                                 clock=clock, spawn=spawn)
    ...; await xc.stop()
"""

from .cleanup import NodeCleanup
from .cluster_id import reconcile_cluster_id
from .codec import decode_element, decode_routed, encode_element, encode_routed
from .forwarding import SessionForwarding
from .resumption import ClusterResumption, ReplicatedSmTable
from .service import XmppCluster
from .session_table import ReplicatedSessionTable
from .settings import ClusterSettings, cluster_settings
from .sm_buffer import ReplicatedSmBuffer

__all__ = [
    "ClusterResumption",
    "ClusterSettings",
    "NodeCleanup",
    "ReplicatedSessionTable",
    "ReplicatedSmBuffer",
    "ReplicatedSmTable",
    "SessionForwarding",
    "XmppCluster",
    "cluster_settings",
    "decode_element",
    "decode_routed",
    "encode_element",
    "encode_routed",
    "reconcile_cluster_id",
]
