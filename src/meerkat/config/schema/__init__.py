"""The shape of `meerkat.toml`: one frozen dataclass per section, defaults and docs included.

`ServerConfig` is the whole file; the other classes are its sections, named after them.
"""

from meerkat.config.schema.acl import (
    AccessRuleEntry,
    AccessRules,
    AclPattern,
    Acls,
    Shaper,
    default_access,
    default_acls,
    default_shapers,
)
from meerkat.config.schema.auth import (
    AnonymousConfig,
    AuthConfig,
    PasswordConfig,
    RdbmsAuthConfig,
    SlowdownConfig,
)
from meerkat.config.schema.databases import (
    CetsConfig,
    InternalDatabases,
    LinkTlsConfig,
    OutgoingPools,
    RdbmsConnection,
    RdbmsPool,
    RdbmsTlsConfig,
)
from meerkat.config.schema.general import GeneralConfig
from meerkat.config.schema.http import (
    BoshHandler,
    GraphqlHandler,
    HttpHandlers,
    HttpListener,
    HttpTransport,
    WebSocketHandler,
)
from meerkat.config.schema.listen import (
    C2SListener,
    ListenConfig,
    S2SListener,
    ServiceListener,
    default_listen,
)
from meerkat.config.schema.s2s import S2SConfig, S2SOutgoing
from meerkat.config.schema.server import HostConfig, HostGeneral, HostSettings, ServerConfig
from meerkat.config.schema.tls import C2STlsConfig, TlsConfig

__all__ = [
    "AccessRuleEntry",
    "AccessRules",
    "AclPattern",
    "Acls",
    "AnonymousConfig",
    "AuthConfig",
    "BoshHandler",
    "C2SListener",
    "C2STlsConfig",
    "CetsConfig",
    "GeneralConfig",
    "GraphqlHandler",
    "HostConfig",
    "HostGeneral",
    "HostSettings",
    "HttpHandlers",
    "HttpListener",
    "HttpTransport",
    "InternalDatabases",
    "LinkTlsConfig",
    "ListenConfig",
    "OutgoingPools",
    "PasswordConfig",
    "RdbmsAuthConfig",
    "RdbmsConnection",
    "RdbmsPool",
    "RdbmsTlsConfig",
    "S2SConfig",
    "S2SListener",
    "S2SOutgoing",
    "ServerConfig",
    "ServiceListener",
    "Shaper",
    "SlowdownConfig",
    "TlsConfig",
    "WebSocketHandler",
    "default_access",
    "default_acls",
    "default_listen",
    "default_shapers",
]
