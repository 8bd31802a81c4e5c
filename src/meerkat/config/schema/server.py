"""`ServerConfig`: the whole `meerkat.toml`, cross-section rules, and per-host views.

`[[host_config]]` overrides, for one domain: `general.replaced_wait_timeout`, the whole
`auth` and `modules` sections (replaced, as in MongooseIM), `s2s` (replaced), and `acl` /
`access` (merged: classes are united, a host's rule entries come after the global ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meerkat.config.schema._util import check_unique, doc, quote
from meerkat.config.schema.acl import (
    BUILTIN_RULES,
    AccessRuleEntry,
    AccessRules,
    AclPattern,
    Acls,
    Shaper,
    check_rules,
    default_access,
    default_acls,
    default_shapers,
)
from meerkat.config.schema.auth import AuthConfig
from meerkat.config.schema.databases import (
    InternalDatabases,
    OutgoingPools,
    default_internal_databases,
    default_pools,
)
from meerkat.config.schema.general import GeneralConfig
from meerkat.config.schema.listen import ListenConfig, default_listen
from meerkat.config.schema.s2s import S2SConfig

_MODULES_DOC = (
    "Enabled modules, `[modules.mod_<name>]`, each with its own options (see the module's "
    "documentation); `[modules.mod_x]` with no options enables it with its defaults. "
    "Without a `[modules]` section the server's default set is enabled."
)


@dataclass(frozen=True)
class HostGeneral:
    """`[host_config.general]`: the `general` options a single domain may override."""

    replaced_wait_timeout: int | None = field(
        default=None, metadata=doc("Overrides `general.replaced_wait_timeout`.")
    )


@dataclass(frozen=True)
class HostConfig:
    """`[[host_config]]`: options for one domain of `general.hosts`."""

    host: str = field(metadata=doc("The domain these options are for (required)."))
    general: HostGeneral | None = field(default=None, metadata=doc("General option overrides."))
    auth: AuthConfig | None = field(
        default=None, metadata=doc("Replaces the whole `[auth]` section.")
    )
    modules: Mapping[str, Any] | None = field(
        default=None,
        metadata={**doc("Replaces the whole `[modules]` section."), "builder": "modules"},
    )
    acl: Acls = field(
        default_factory=dict, metadata=doc("Access classes united with the global ones.")
    )
    access: AccessRules = field(
        default_factory=dict,
        metadata=doc("Access rule entries appended after the global ones."),
    )
    s2s: S2SConfig | None = field(default=None, metadata=doc("Replaces the whole `[s2s]` section."))


@dataclass(frozen=True)
class HostSettings:
    """The options in force for one domain: global ones with its `host_config` applied."""

    host: str
    replaced_wait_timeout: int
    auth: AuthConfig
    modules: Mapping[str, Any]
    acl: Acls
    access: AccessRules
    s2s: S2SConfig


@dataclass(frozen=True)
class ServerConfig:
    """The whole configuration file."""

    general: GeneralConfig = field(default_factory=GeneralConfig, metadata=doc("`[general]`."))
    listen: ListenConfig = field(
        default_factory=default_listen,
        metadata=doc("Listeners, `[listen]`."),
    )
    auth: AuthConfig = field(default_factory=AuthConfig, metadata=doc("`[auth]`."))
    outgoing_pools: OutgoingPools = field(
        default_factory=lambda: OutgoingPools(rdbms=default_pools()),
        metadata=doc(
            "Connection pools, `[outgoing_pools]`.",
            default='`rdbms.default`: sqlite "meerkat.sqlite3"',
        ),
    )
    internal_databases: InternalDatabases = field(
        default_factory=default_internal_databases,
        metadata=doc("Cluster storage, `[internal_databases]`.", default="`cets` with defaults"),
    )
    modules: Mapping[str, Any] = field(
        default_factory=dict,
        metadata={
            **doc(_MODULES_DOC, default="the server's default set"),
            "builder": "modules",
            "builder_default": True,
        },
    )
    shaper: dict[str, Shaper] = field(
        default_factory=default_shapers,
        metadata=doc(
            "Traffic shapers by name, `[shaper.<name>]`.", default="normal = 1000, fast = 50000"
        ),
    )
    acl: Acls = field(
        default_factory=default_acls,
        metadata=doc(
            "Access classes by name, `[acl]`: arrays of patterns.",
            default="`local = [{}]`, `admin = []`, `blocked = []`",
        ),
    )
    access: AccessRules = field(
        default_factory=default_access,
        metadata=doc(
            "Access rules by name, `[access]`: arrays of `{acl, value}`.",
            default="MongooseIM's shipped rules, `register` denied",
        ),
    )
    s2s: S2SConfig = field(default_factory=S2SConfig, metadata=doc("`[s2s]`."))
    host_config: tuple[HostConfig, ...] = field(
        default=(), metadata=doc("Per-domain overrides, `[[host_config]]`.")
    )

    def __post_init__(self) -> None:
        # Listener stanza limits left unset take the general one, so readers never see None.
        object.__setattr__(self, "listen", _resolve_stanza_sizes(self.listen, self.general))

    def validate(self) -> list[str]:
        """Rules spanning sections: names referenced exist, needed pools are configured."""
        problems: list[str] = []
        pools = self.outgoing_pools.rdbms
        cets = self.internal_databases.cets
        if "rdbms" in self.auth.methods and "default" not in pools:
            problems.append('auth.methods: "rdbms" needs [outgoing_pools.rdbms.default]')
        if cets is not None and cets.backend == "rdbms" and "default" not in pools:
            problems.append(
                'internal_databases.cets.backend: "rdbms" needs [outgoing_pools.rdbms.default]'
            )
        if self.general.workers > 1 and cets is None:
            problems.append("general.workers: more than one worker needs [internal_databases.cets]")
        problems += self._check_listener_rules()
        known_acls = set(self.acl) | {a for hc in self.host_config for a in hc.acl}
        problems += check_rules(self.access, known_acls, "access")
        problems += self._check_host_configs(known_acls)
        return problems

    def _check_listener_rules(self) -> list[str]:
        rules = set(self.access) | BUILTIN_RULES | {r for hc in self.host_config for r in hc.access}
        shapers = set(self.shaper) | {"none"}
        either = rules | shapers
        checks: list[tuple[str, str, set[str], str]] = []  # (where, name, known, what)
        for i, c2s in enumerate(self.listen.c2s):
            checks.append((f"listen.c2s[{i}].access", c2s.access, rules, "access rule"))
            checks.append((f"listen.c2s[{i}].shaper", c2s.shaper, either, "rule or shaper"))
        for i, s2s in enumerate(self.listen.s2s):
            checks.append((f"listen.s2s[{i}].shaper", s2s.shaper, either, "rule or shaper"))
        for i, svc in enumerate(self.listen.service):
            checks.append((f"listen.service[{i}].access", svc.access, rules, "access rule"))
            checks.append((f"listen.service[{i}].shaper_rule", svc.shaper_rule, shapers, "shaper"))
        return [
            f"{where}: no {what} named {quote(name)}"
            for where, name, known, what in checks
            if name not in known
        ]

    def _check_host_configs(self, known_acls: set[str]) -> list[str]:
        problems = check_unique("host_config", [hc.host for hc in self.host_config])
        for index, hc in enumerate(self.host_config):
            where = f"host_config[{index}]"
            if hc.host not in self.general.hosts:
                problems.append(f"{where}.host: {quote(hc.host)} is not one of general.hosts")
            problems += check_rules(hc.access, known_acls, f"{where}.access")
        return problems

    def for_host(self, host: str) -> HostSettings:
        """The options in force for `host` (one of `general.hosts`)."""
        if host not in self.general.hosts:
            raise KeyError(f"{quote(host)} is not one of general.hosts")
        override = next((hc for hc in self.host_config if hc.host == host), None)
        if override is None:
            override = HostConfig(host=host)
        general = override.general or HostGeneral()
        return HostSettings(
            host=host,
            replaced_wait_timeout=(
                general.replaced_wait_timeout
                if general.replaced_wait_timeout is not None
                else self.general.replaced_wait_timeout
            ),
            auth=override.auth or self.auth,
            modules=override.modules if override.modules is not None else self.modules,
            acl=_merge(self.acl, override.acl),
            access=_merge(self.access, override.access),
            s2s=override.s2s or self.s2s,
        )


def _merge(
    base: Mapping[str, tuple[Any, ...]], extra: Mapping[str, tuple[Any, ...]]
) -> dict[str, tuple[Any, ...]]:
    merged = dict(base)
    for name, items in extra.items():
        merged[name] = merged.get(name, ()) + items
    return merged


def _resolve_stanza_sizes(listen: ListenConfig, general: GeneralConfig) -> ListenConfig:
    size = general.max_stanza_size
    c2s = tuple(
        dataclasses.replace(c, max_stanza_size=size) if c.max_stanza_size is None else c
        for c in listen.c2s
    )
    http = []
    for listener in listen.http:
        ws = tuple(
            dataclasses.replace(h, max_stanza_size=size) if h.max_stanza_size is None else h
            for h in listener.handlers.mod_websockets
        )
        handlers = dataclasses.replace(listener.handlers, mod_websockets=ws)
        http.append(dataclasses.replace(listener, handlers=handlers))
    return dataclasses.replace(listen, c2s=c2s, http=tuple(http))


__all__ = [
    "AccessRuleEntry",
    "AclPattern",
    "HostConfig",
    "HostGeneral",
    "HostSettings",
    "ServerConfig",
]
