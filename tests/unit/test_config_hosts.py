"""Modules from a caller-supplied registry, and per-host overrides (`[[host_config]]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from meerkat.config import ConfigError, config_from_toml, load_config
from meerkat.config.schema import AccessRuleEntry, AclPattern


@dataclass(frozen=True)
class PingConfig:
    send_pings: bool = False
    ping_interval: int = field(default=60, metadata={"doc": "Seconds between pings."})

    def validate(self) -> list[str]:
        return [] if self.ping_interval > 0 else ["ping_interval: must be positive"]


@dataclass(frozen=True)
class RosterConfig:
    versioning: bool = False


class FakeModule:
    """Stands in for a core `Module` subclass: the registry may hold those as well."""

    Config: ClassVar[type] = RosterConfig


REGISTRY = {"mod_ping": PingConfig, "mod_roster": RosterConfig, "mod_vcard": FakeModule}
DEFAULTS = ("mod_roster", "mod_ping")


def load(text: str) -> object:
    return config_from_toml(text, REGISTRY, DEFAULTS)


def test_without_a_modules_section_the_callers_default_set_is_enabled() -> None:
    config = load_config(None, REGISTRY, DEFAULTS)
    assert config.modules == {"mod_roster": RosterConfig(), "mod_ping": PingConfig()}


def test_a_modules_section_enables_exactly_the_listed_modules() -> None:
    config = config_from_toml(
        "[modules.mod_ping]\nsend_pings = true\n[modules.mod_vcard]\n", REGISTRY, DEFAULTS
    )
    assert config.modules == {"mod_ping": PingConfig(send_pings=True), "mod_vcard": RosterConfig()}


def test_module_options_are_checked_like_any_other() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_toml(
            "[modules.mod_ping]\nping_interval = 0\nsend = 1\n"
            "[modules.mod_roster]\nversioning = 1\n[modules.mod_muc]\n",
            REGISTRY,
        )
    assert info.value.problems == [
        "modules.mod_ping.send: unknown key",
        "modules.mod_ping.ping_interval: must be positive",
        "modules.mod_roster.versioning: expected a boolean, got 1",
        "modules.mod_muc: unknown module",
    ]


def test_a_default_module_missing_from_the_registry_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mod_mam"):
        load_config(None, REGISTRY, ("mod_mam",))


HOSTS = """
[general]
  hosts = ["a.example", "b.example"]
  default_server_domain = "a.example"
  replaced_wait_timeout = 2000
[acl]
  local = [{}]
  admin = [{user = "alice"}]
  blocked = []
[[host_config]]
  host = "b.example"
  [host_config.general]
    replaced_wait_timeout = 500
  [host_config.auth]
    methods = ["anonymous"]
    sasl_mechanisms = ["anonymous"]
  [host_config.modules.mod_ping]
    send_pings = true
  [host_config.acl]
    admin = [{user = "bob"}]
    testers = [{user_glob = "test*"}]
  [host_config.access]
    register = [{acl = "testers", value = "allow"}]
  [host_config.s2s]
    default_policy = "deny"
"""


def test_a_host_without_overrides_sees_the_global_options() -> None:
    config = config_from_toml(HOSTS, REGISTRY, DEFAULTS)
    host = config.for_host("a.example")
    assert host.replaced_wait_timeout == 2000
    assert host.auth == config.auth
    assert host.modules == config.modules
    assert host.acl == config.acl
    assert host.access == config.access
    assert host.s2s == config.s2s


def test_host_config_replaces_auth_modules_and_s2s_and_merges_acl_and_access() -> None:
    config = config_from_toml(HOSTS, REGISTRY, DEFAULTS)
    host = config.for_host("b.example")
    assert host.replaced_wait_timeout == 500
    assert host.auth.methods == ("anonymous",)
    assert host.modules == {"mod_ping": PingConfig(send_pings=True)}
    assert host.s2s.default_policy == "deny"
    assert host.acl["admin"] == (AclPattern(user="alice"), AclPattern(user="bob"))
    assert host.acl["testers"] == (AclPattern(user_glob="test*"),)
    assert host.access["register"] == (
        AccessRuleEntry("all", "deny"),
        AccessRuleEntry("testers", "allow"),
    )


def test_for_host_refuses_a_domain_that_is_not_served() -> None:
    config = config_from_toml(HOSTS, REGISTRY, DEFAULTS)
    with pytest.raises(KeyError):
        config.for_host("c.example")


def test_host_config_modules_are_checked_against_the_registry() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_toml(
            "[[host_config]]\nhost = 'localhost'\n[host_config.modules.mod_nope]\n", REGISTRY
        )
    assert info.value.problems == ["host_config[0].modules.mod_nope: unknown module"]


def test_host_config_auth_is_validated_as_a_whole_section() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_toml("[[host_config]]\nhost = 'localhost'\n[host_config.auth]\nmethods = []\n")
    assert info.value.problems == ["host_config[0].auth.methods: at least one method is required"]


def test_a_mongooseim_style_cets_configuration_loads() -> None:
    config = config_from_toml(
        """
        [general]
          loglevel = "warning"
          hosts = ["localhost"]
          default_server_domain = "localhost"
          registration_timeout = "infinity"
          language = "en"
          max_fsm_queue = 1000
          sm_backend = "cets"
          component_backend = "cets"
          s2s_backend = "cets"
        [[listen.c2s]]
          port = 5222
          access = "c2s"
          shaper = "c2s_shaper"
          max_stanza_size = 65536
          [listen.c2s.tls]
            mode = "starttls"
        [[listen.http]]
          port = 5551
          ip_address = "127.0.0.1"
          [[listen.http.handlers.mongoose_graphql_handler]]
            host = "localhost"
            path = "/api/graphql"
            schema_endpoint = "admin"
            username = "admin"
            password = "secret"
            allowed_categories = ["account", "cets", "session"]
        [auth]
          methods = ["rdbms"]
          [auth.password]
            format = "scram"
            scram_iterations = 64
        [internal_databases.cets]
          cluster_name = "mongooseim"
        [outgoing_pools.rdbms.default]
          scope = "global"
          workers = 5
          [outgoing_pools.rdbms.default.connection]
            driver = "pgsql"
            host = "db.internal"
            database = "mongooseim"
            username = "mongooseim"
            password = "mongooseim_secret"
            tls.required = true
        """
    )
    assert config.general.registration_timeout == "infinity"
    assert config.listen.c2s[0].tls.mode == "starttls"
    assert config.auth.password.scram_iterations == 64
    pool = config.outgoing_pools.rdbms["default"]
    assert (pool.workers, pool.connection.driver, pool.connection.host) == (
        5,
        "pgsql",
        "db.internal",
    )
    assert pool.connection.tls is not None and pool.connection.tls.required
    assert config.internal_databases.cets is not None
    assert config.internal_databases.cets.cluster_name == "mongooseim"
