"""From `[internal_databases.cets]` to a `Cluster`: names, addresses, secret, TLS, discovery.

Decisions a reader may look for:

- **No `cets` section** (an `[internal_databases]` table without it): no cluster at all, a
  standalone node with a plain in-memory session table.
- **SQLite discovery binds loopback.** Only processes on this machine can share an SQLite
  file, so with the default wildcard `ip_address` and an SQLite `default` pool the cluster
  port binds 127.0.0.1 (the embedded defaults, `make run`, never open a port to the network
  for a cluster that cannot span machines).
- **A busy cluster port is not fatal with database discovery.** Discovery publishes the
  address actually bound, so when the configured port is taken (a second node on the same
  machine, a test run) the node warns and binds a free port. With file discovery the port
  is part of what other nodes read, so a busy port is an error.
- **Advertised address**: `advertised_address`, else `MEERKAT_NODE_IP`, else the bound
  `ip_address` when it is a specific address, else the host name; the bound port is
  appended unless the setting names one (`host:port`, `[v6]:port`).
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from ..cluster import DiscoveredNode, FileBackend
from ..config import ServerConfig, cluster_secret
from ..config.schema.databases import CetsConfig

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Everything needed to start this node's cluster layer."""

    node_name: str
    cluster_name: str
    secret: bytes
    listen_host: str
    port: int
    port_fallback: bool
    """Bind a free port when `port` is taken (database discovery only)."""
    advertised: str | None
    """Host or host:port to publish; None: derive from the bound address."""
    backend: str
    node_list_file: Path | None
    node_expiry: int
    server_ssl: ssl.SSLContext | None = None
    client_ssl: ssl.SSLContext | None = None

    @property
    def listen_address(self) -> str:
        return join_address(self.listen_host, self.port)

    def published_address(self, bound: str) -> str:
        """The address discovery publishes, given the address the listener bound."""
        bound_host, _, bound_port = bound.rpartition(":")
        host = self.advertised
        if host is None:
            host = os.environ.get("MEERKAT_NODE_IP") or None
        if host is None:
            plain = bound_host.strip("[]")
            host = socket.gethostname() if plain in WILDCARDS else plain
        if has_port(host):
            return host
        return join_address(host, int(bound_port))


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def has_port(address: str) -> bool:
    """True for ``host:port`` and ``[v6]:port``; False for a bare host or IPv6 address."""
    if address.startswith("["):
        return "]:" in address
    host, sep, port = address.rpartition(":")
    return bool(sep) and port.isdigit() and ":" not in host


def cluster_settings(config: ServerConfig) -> ClusterSettings | None:
    """The cluster of this config, or None for a standalone node."""
    cets = config.internal_databases.cets
    if cets is None:
        return None
    general = config.general
    pool = config.outgoing_pools.rdbms.get("default")
    sqlite = pool is not None and pool.connection.driver == "sqlite"
    host = cets.ip_address
    if sqlite and cets.backend == "rdbms" and host in WILDCARDS:
        host = LOOPBACK
    server_ssl, client_ssl = _tls(cets, general.data_dir)
    return ClusterSettings(
        node_name=general.node_name,
        cluster_name=cets.cluster_name,
        secret=cluster_secret(config),
        listen_host=host,
        port=cets.port,
        port_fallback=cets.backend == "rdbms",
        advertised=cets.advertised_address,
        backend=cets.backend,
        node_list_file=(
            general.data_path(cets.node_list_file) if cets.node_list_file is not None else None
        ),
        node_expiry=cets.node_expiry,
        server_ssl=server_ssl,
        client_ssl=client_ssl,
    )


def _tls(cets: CetsConfig, data_dir: Path) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """Mutual TLS on links: both ends present a certificate chaining to the cluster CA.

    Host names are not checked: peers dial addresses from discovery, and what proves a peer
    is the CA (and, inside the link, the cluster secret).
    """
    tls = cets.tls
    if tls is None:
        return None, None
    certfile = data_dir / tls.certfile  # absolute paths stay as they are
    keyfile = data_dir / tls.keyfile if tls.keyfile is not None else None
    cafile = str(data_dir / tls.cacertfile)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cafile)
    server.load_cert_chain(certfile, keyfile)
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    client.load_cert_chain(certfile, keyfile)
    client.check_hostname = False
    return server, client


class NodeListFile:
    """File discovery (`node_list_file`) that also accepts MongooseIM-style node names.

    Tokens are ``host:port``, ``name=host:port`` or ``name@host``; the last is reached at
    ``host`` on this node's cluster port (every node of such a list uses the same port).
    """

    def __init__(self, path: Path, port: int) -> None:
        self._file = FileBackend(path)
        self._port = port

    async def get_nodes(self) -> list[DiscoveredNode]:
        nodes = []
        for node in await self._file.get_nodes():
            token = node.address
            if node.name is None and "@" in token and not has_port(token):
                host = token.partition("@")[2]
                nodes.append(DiscoveredNode(token, join_address(host, self._port)))
            else:
                nodes.append(node)
        return nodes
