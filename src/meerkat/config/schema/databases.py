"""`[outgoing_pools.rdbms.<tag>]` (database pools) and `[internal_databases.cets]` (cluster).

The pool shape is MongooseIM's (`workers`, `connection.driver/host/...`, timeouts in ms) with
`sqlite` as an extra driver; `meerkat.config.pool_settings()` converts a pool to the flat
`meerkat.db.settings.DatabaseSettings` the database layer opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meerkat.config.schema._util import check_min, check_port, doc, quote

Driver = Literal["sqlite", "pgsql", "mysql"]
SQLITE_DEFAULT_FILE = "meerkat.sqlite3"


@dataclass(frozen=True)
class RdbmsTlsConfig:
    """`[outgoing_pools.rdbms.<tag>.connection.tls]`: TLS to the database server."""

    required: bool = field(
        default=True, metadata=doc("Refuse to talk to the database without TLS.")
    )
    cacertfile: Path | None = field(
        default=None,
        metadata=doc("PEM CA bundle verifying the server; unset = system trust store."),
    )


@dataclass(frozen=True)
class RdbmsConnection:
    """`[outgoing_pools.rdbms.<tag>.connection]`: where the database is."""

    driver: Driver = field(metadata=doc('"sqlite", "pgsql" or "mysql" (required).'))
    host: str = field(default="127.0.0.1", metadata=doc("Server host (pgsql, mysql)."))
    port: int | None = field(
        default=None,
        metadata=doc("Server port; unset = 5432 for pgsql, 3306 for mysql."),
    )
    database: str | None = field(
        default=None,
        metadata=doc(
            "sqlite: database file, relative to `general.data_dir` (default "
            f'"{SQLITE_DEFAULT_FILE}"); pgsql, mysql: database name (required).'
        ),
    )
    username: str = field(default="", metadata=doc("Login name (pgsql, mysql)."))
    password: str = field(default="", metadata=doc("Login password (pgsql, mysql)."))
    query_timeout: int = field(
        default=5000,
        metadata=doc(
            "Milliseconds one statement may take once it has a connection. A call waiting for "
            "a connection waits while the pool makes progress (a connection came back within "
            "the last `query_timeout`) and fails after one `query_timeout` without any."
        ),
    )
    connect_timeout: int = field(
        default=5000, metadata=doc("Milliseconds a new connection may take.")
    )
    schema: str | None = field(
        default=None, metadata=doc("PostgreSQL schema (search_path) holding the tables.")
    )
    tls: RdbmsTlsConfig | None = field(
        default=None, metadata=doc("TLS settings; absent = plain TCP.")
    )

    def validate(self) -> list[str]:
        """Server drivers need a database name (and a login for the server)."""
        problems: list[str] = []
        if self.port is not None:
            problems += check_port("port", self.port)
        if self.driver != "sqlite":
            if not self.database:
                problems.append(f"database: required for driver {quote(self.driver)}")
            if not self.username:
                problems.append(f"username: required for driver {quote(self.driver)}")
        elif self.database == "":
            problems.append("database: must not be empty")
        if self.schema is not None and self.driver != "pgsql":
            problems.append('schema: only meaningful for driver "pgsql"')
        problems += check_min("query_timeout", self.query_timeout, 1)
        problems += check_min("connect_timeout", self.connect_timeout, 1)
        return problems

    @property
    def database_name(self) -> str:
        """The database (or SQLite file name) with the driver default applied."""
        return self.database if self.database is not None else SQLITE_DEFAULT_FILE


@dataclass(frozen=True)
class RdbmsPool:
    """`[outgoing_pools.rdbms.<tag>]`: one pool of database connections. The `default`
    pool holds users, rosters, archives and the cluster's node discovery."""

    connection: RdbmsConnection = field(metadata=doc("Where the database is (required)."))
    workers: int = field(default=10, metadata=doc("Connections in the pool."))
    scope: Literal["global"] = field(
        default="global",
        metadata=doc('Pools serve every domain ("global"); per host type pools are not supported.'),
    )
    create_schema: bool | None = field(
        default=None,
        metadata=doc(
            "Create or migrate the tables on start when missing; unset = true for sqlite, "
            "false for pgsql and mysql (apply `pg.sql` / `mysql.sql` by hand)."
        ),
    )

    def validate(self) -> list[str]:
        """At least one connection."""
        return check_min("workers", self.workers, 1)


def default_pools() -> dict[str, RdbmsPool]:
    """The embedded default: one SQLite `default` pool under the data directory."""
    return {"default": RdbmsPool(connection=RdbmsConnection(driver="sqlite"))}


@dataclass(frozen=True)
class OutgoingPools:
    """`[outgoing_pools]`: connection pools to other services. Without this section the
    node uses an SQLite file `meerkat.sqlite3` under `general.data_dir`."""

    rdbms: dict[str, RdbmsPool] = field(
        default_factory=dict, metadata=doc("Database pools by tag, `[outgoing_pools.rdbms.<tag>]`.")
    )


@dataclass(frozen=True)
class LinkTlsConfig:
    """`[internal_databases.cets.tls]`: TLS on the links between cluster nodes."""

    certfile: Path = field(metadata=doc("PEM certificate of this node (required)."))
    keyfile: Path | None = field(default=None, metadata=doc("PEM key, if not in certfile."))
    cacertfile: Path = field(
        default=Path("cluster-ca.pem"),
        metadata=doc("PEM CA bundle peers' certificates must chain to (relative to data_dir)."),
    )


@dataclass(frozen=True)
class CetsConfig:
    """`[internal_databases.cets]`: the cluster (replicated in-memory tables, node discovery,
    links between nodes). Absent `[internal_databases]` enables it with these defaults; an
    `[internal_databases]` section without `cets` makes a standalone node."""

    backend: Literal["rdbms", "file"] = field(
        default="rdbms",
        metadata=doc(
            'Node discovery: "rdbms" (table `discovery_nodes` in the `default` pool) '
            'or "file" (a list of node names in `node_list_file`).'
        ),
    )
    cluster_name: str = field(
        default="meerkat", metadata=doc("Nodes discover only nodes with the same cluster name.")
    )
    node_list_file: Path | None = field(
        default=None,
        metadata=doc('File of node names separated by white space (required for "file").'),
    )
    ip_address: str = field(
        default="0.0.0.0", metadata=doc("Address the cluster link listener binds.")
    )
    port: int = field(
        default=4370,
        metadata=doc("Port of cluster links; with `general.workers = N`, worker i uses port + i."),
    )
    advertised_address: str | None = field(
        default=None,
        metadata=doc(
            "Address other nodes use to reach this one (published by discovery); "
            "unset = `MEERKAT_NODE_IP` from the environment, else the host name."
        ),
    )
    secret: str | None = field(
        default=None,
        metadata=doc(
            "Shared secret authenticating cluster links. Unset: read from "
            "`<data_dir>/cluster.secret`, generated there on first start (nodes on "
            "different machines must be given the same secret)."
        ),
    )
    node_expiry: int = field(
        default=3600,
        metadata=doc(
            "Seconds after which a node no longer refreshing its discovery row is "
            "removed from the discovery table."
        ),
    )
    tls: LinkTlsConfig | None = field(
        default=None, metadata=doc("TLS on cluster links; absent = plain TCP.")
    )

    def validate(self) -> list[str]:
        """File backend needs a file; ranges."""
        problems = check_port("port", self.port)
        if self.backend == "file" and self.node_list_file is None:
            problems.append('node_list_file: required when backend = "file"')
        if not self.cluster_name:
            problems.append("cluster_name: must not be empty")
        if self.secret is not None and len(self.secret) < 16:
            problems.append("secret: must be at least 16 characters long")
        problems += check_min("node_expiry", self.node_expiry, 60)
        return problems


@dataclass(frozen=True)
class InternalDatabases:
    """`[internal_databases]`: the cluster's in-memory replicated storage."""

    cets: CetsConfig | None = field(
        default=None,
        metadata=doc("The cluster; absent inside a given `[internal_databases]` = standalone."),
    )


def default_internal_databases() -> InternalDatabases:
    """Without an `[internal_databases]` section CETS runs with its defaults."""
    return InternalDatabases(cets=CetsConfig())
