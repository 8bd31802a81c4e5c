"""Connection settings of one database pool.

`DatabaseSettings` is flat and in runtime units (seconds): what `Database.open` takes. The
TOML shape is MongooseIM's, parsed by `meerkat.config` (`RdbmsPool`) and converted by
`meerkat.config.pool_settings()`; key names match these fields, timeouts are in ms::

      [outgoing_pools.rdbms.default]
        workers = 10
        create_schema = true            # Meerkat only; default: true for sqlite, else false
        [outgoing_pools.rdbms.default.connection]
          driver = "pgsql"              # "sqlite" | "pgsql" | "mysql"
          host = "127.0.0.1"
          port = 5432
          database = "meerkat"
          username = "meerkat"
          password = "secret"
          query_timeout = 5000          # ms
          connect_timeout = 5000        # ms (Meerkat only)
          schema = "public"             # Meerkat only, PostgreSQL search_path
          [outgoing_pools.rdbms.default.connection.tls]
            required = true
            cacertfile = "/etc/ssl/db-ca.pem"

"Not given" defaults that depend on the driver (port, create_schema) are resolved in
`__post_init__`, so a constructed `DatabaseSettings` always holds concrete values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, get_args

Driver = Literal["sqlite", "pgsql", "mysql"]
DRIVERS: tuple[str, ...] = get_args(Driver)
DEFAULT_PORTS: dict[str, int | None] = {"sqlite": None, "pgsql": 5432, "mysql": 3306}
SQLITE_DEFAULT_FILE = "meerkat.sqlite3"


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Everything needed to open one `Database` (one pool)."""

    driver: Driver = field(
        default="sqlite", metadata=_doc('Database driver: "sqlite", "pgsql" or "mysql".')
    )
    host: str = field(
        default="127.0.0.1", metadata=_doc("Server host name or IP (ignored for sqlite).")
    )
    port: int | None = field(
        default=None,
        metadata=_doc("Server TCP port; default 5432 for pgsql, 3306 for mysql, None for sqlite."),
    )
    database: str = field(
        default=SQLITE_DEFAULT_FILE,
        metadata=_doc(
            "sqlite: database file, relative to the data directory unless absolute; "
            "otherwise the database name on the server."
        ),
    )
    username: str = field(default="", metadata=_doc("Login name (ignored for sqlite)."))
    password: str = field(default="", metadata=_doc("Login password (ignored for sqlite)."))
    workers: int = field(default=10, metadata=_doc("Maximum number of pooled connections."))
    query_timeout: float = field(
        default=5.0,
        metadata=_doc(
            "Seconds one query may take, including waiting for a free connection and "
            "reconnecting; past it `DatabaseUnavailable` (QueryTimeout) is raised."
        ),
    )
    connect_timeout: float = field(
        default=5.0, metadata=_doc("Seconds a new connection may take to be established.")
    )
    tls: bool = field(default=False, metadata=_doc("Require TLS to the database server."))
    cafile: str | None = field(
        default=None,
        metadata=_doc(
            "CA bundle verifying the server certificate when tls is on; None = system trust store."
        ),
    )
    schema: str | None = field(
        default=None,
        metadata=_doc("PostgreSQL only: schema (search_path) holding Meerkat's tables."),
    )
    create_schema: bool | None = field(
        default=None,
        metadata=_doc(
            "Create (or migrate) the schema on start when missing. None means the driver "
            "default: true for sqlite, false for pgsql/mysql (apply the .sql file by hand)."
        ),
    )

    def __post_init__(self) -> None:
        problems = []
        if self.driver not in DRIVERS:
            problems.append(f"driver: must be one of {', '.join(DRIVERS)}, got {self.driver!r}")
        if self.workers < 1:
            problems.append(f"workers: must be at least 1, got {self.workers}")
        if not self.query_timeout > 0:
            problems.append(f"query_timeout: must be positive, got {self.query_timeout}")
        if not self.connect_timeout > 0:
            problems.append(f"connect_timeout: must be positive, got {self.connect_timeout}")
        if self.port is not None and not 0 < self.port < 65536:
            problems.append(f"port: must be 1..65535, got {self.port}")
        if not self.database:
            problems.append("database: must not be empty")
        if problems:
            raise ValueError("; ".join(problems))
        if self.port is None:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.driver])
        if self.create_schema is None:
            object.__setattr__(self, "create_schema", self.driver == "sqlite")

    def replace(self, **changes: object) -> DatabaseSettings:
        """A copy with some fields changed (already resolved defaults are kept)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        """Where this pool points, for logs and error messages (never the password)."""
        if self.driver == "sqlite":
            return f"sqlite:{self.database}"
        user = f"{self.username}@" if self.username else ""
        return f"{self.driver}://{user}{self.host}:{self.port}/{self.database}"
