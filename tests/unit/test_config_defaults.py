"""Embedded defaults: no file starts a useful single node; the example file equals them."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from meerkat.config import ConfigError, ServerConfig, load_config, markdown_docs
from meerkat.config.__main__ import main as config_main
from meerkat.config.schema import (
    AccessRuleEntry,
    AclPattern,
    C2STlsConfig,
    CetsConfig,
    RdbmsConnection,
    RdbmsPool,
    Shaper,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def defaults() -> ServerConfig:
    return load_config(None)


def test_no_file_gives_the_same_config_as_the_dataclass_defaults(defaults: ServerConfig) -> None:
    assert defaults == ServerConfig()


def test_general_defaults_serve_localhost_from_var(defaults: ServerConfig) -> None:
    general = defaults.general
    assert general.hosts == ("localhost",)
    assert general.default_server_domain == "localhost"
    assert general.loglevel == "warning"
    assert general.language == "en"
    assert general.data_dir == Path("var")
    assert general.node_name == f"meerkat@{socket.gethostname()}"
    assert general.workers == 1
    assert general.max_fsm_queue == 1000
    assert general.registration_timeout == 600
    assert general.replaced_wait_timeout == 2000
    assert general.hide_service_name is False
    assert general.max_stanza_size == 65536
    assert general.data_path("meerkat.sqlite3") == Path("var/meerkat.sqlite3")


def test_default_listeners_are_starttls_direct_tls_web_and_admin(defaults: ServerConfig) -> None:
    c2s, c2s_tls = defaults.listen.c2s
    assert (c2s.ip_address, c2s.port, c2s.tls.mode) == ("0.0.0.0", 5222, "starttls_required")
    assert (c2s_tls.port, c2s_tls.tls.mode) == (5223, "tls")
    assert c2s.max_connections == 10000
    assert c2s.max_stanza_size == 65536  # resolved from general
    assert (c2s.access, c2s.shaper) == ("c2s", "c2s_shaper")
    assert c2s.tls.certfile is None and c2s.tls.generates_certificate
    web, admin = defaults.listen.http
    assert (web.ip_address, web.port, web.tls) == ("0.0.0.0", 5280, None)
    assert [h.path for h in web.handlers.mod_websockets] == ["/ws-xmpp"]
    assert web.handlers.mod_websockets[0].max_stanza_size == 65536
    assert web.handlers.mod_bosh == ()  # BOSH is not implemented: not configured by default
    assert (admin.ip_address, admin.port) == ("127.0.0.1", 5551)
    (graphql,) = admin.handlers.mongoose_graphql_handler
    assert (graphql.schema_endpoint, graphql.path, graphql.username) == (
        "admin",
        "/api/graphql",
        None,
    )
    assert defaults.listen.s2s == () and defaults.listen.service == ()


def test_a_listen_section_replaces_the_default_listeners() -> None:
    config = _toml("[[listen.c2s]]\nport = 15222\n")
    assert [c.port for c in config.listen.c2s] == [15222]
    assert config.listen.http == ()
    assert config.listen.c2s[0].tls == C2STlsConfig()


def test_general_max_stanza_size_is_the_listeners_default() -> None:
    config = _toml(
        "[general]\nmax_stanza_size = 4096\n[[listen.c2s]]\nport = 1\n"
        "[[listen.c2s]]\nport = 2\nmax_stanza_size = 2048\n"
    )
    assert [c.max_stanza_size for c in config.listen.c2s] == [4096, 2048]


def test_auth_defaults_are_scram_in_the_database(defaults: ServerConfig) -> None:
    auth = defaults.auth
    assert auth.methods == ("rdbms",)
    assert auth.password.format == "scram"
    assert auth.password.hash == ("sha", "sha256", "sha512")
    assert auth.password.scram_iterations == 10000
    assert auth.sasl_mechanisms == (
        "scram_sha512_plus",
        "scram_sha512",
        "scram_sha256_plus",
        "scram_sha256",
        "scram_sha1_plus",
        "scram_sha1",
        "plain",
    )
    assert auth.max_users_per_domain == "infinity"
    assert auth.slowdown.failures_before_delay == 3


def test_the_default_pool_is_sqlite_under_the_data_dir(defaults: ServerConfig) -> None:
    assert defaults.outgoing_pools.rdbms == {
        "default": RdbmsPool(connection=RdbmsConnection(driver="sqlite"))
    }
    connection = defaults.outgoing_pools.rdbms["default"].connection
    assert connection.database_name == "meerkat.sqlite3"


def test_pool_settings_convert_to_the_database_layer_shape() -> None:
    settings_module = pytest.importorskip("meerkat.db.settings")
    from meerkat.config import pool_settings

    config = _toml(
        "[outgoing_pools.rdbms.default]\nworkers = 3\n"
        "[outgoing_pools.rdbms.default.connection]\n"
        'driver = "pgsql"\ndatabase = "mk"\nusername = "u"\npassword = "p"\n'
        "query_timeout = 2500\n"
        '[outgoing_pools.rdbms.default.connection.tls]\ncacertfile = "/ca.pem"\n'
    )
    settings = pool_settings(config.outgoing_pools.rdbms["default"])
    assert isinstance(settings, settings_module.DatabaseSettings)
    assert (settings.driver, settings.port, settings.database) == ("pgsql", 5432, "mk")
    assert (settings.workers, settings.query_timeout, settings.tls) == (3, 2.5, True)
    assert settings.cafile == "/ca.pem"
    sqlite = pool_settings(ServerConfig().outgoing_pools.rdbms["default"])
    assert (sqlite.driver, sqlite.database, sqlite.create_schema) == (
        "sqlite",
        "meerkat.sqlite3",
        True,
    )


def test_the_cluster_is_on_by_default_with_rdbms_discovery(defaults: ServerConfig) -> None:
    cets = defaults.internal_databases.cets
    assert cets == CetsConfig()
    assert cets is not None
    assert (cets.backend, cets.cluster_name, cets.port) == ("rdbms", "meerkat", 4370)
    assert (cets.secret, cets.node_expiry, cets.tls) == (None, 3600, None)


def test_an_internal_databases_section_without_cets_is_a_standalone_node() -> None:
    assert _toml("[internal_databases]\n").internal_databases.cets is None


def test_access_control_defaults_follow_mongooseim_with_registration_denied(
    defaults: ServerConfig,
) -> None:
    assert defaults.shaper == {"normal": Shaper(1000), "fast": Shaper(50000)}
    assert defaults.acl["local"] == (AclPattern(),)
    assert defaults.access["c2s"] == (
        AccessRuleEntry("blocked", "deny"),
        AccessRuleEntry("all", "allow"),
    )
    assert defaults.access["register"] == (AccessRuleEntry("all", "deny"),)
    assert defaults.access["max_user_sessions"] == (AccessRuleEntry("all", 10),)
    assert defaults.access["c2s_shaper"][-1] == AccessRuleEntry("all", "normal")


def test_s2s_and_host_config_defaults(defaults: ServerConfig) -> None:
    assert (defaults.s2s.default_policy, defaults.s2s.use_starttls) == ("allow", "optional")
    assert defaults.s2s.outgoing.port == 5269
    assert defaults.host_config == ()
    assert defaults.modules == {}


def test_the_example_file_parses_and_equals_the_defaults() -> None:
    assert load_config(ROOT / "meerkat.toml") == ServerConfig()


def test_the_configuration_reference_is_up_to_date() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == markdown_docs(), "regenerate: python -m meerkat.config docs"


def test_the_reference_documents_every_section_and_default() -> None:
    text = markdown_docs()
    for heading in ("`[general]`", "`[[listen.c2s]]`", "`[listen.c2s.tls]`",
                    "`[[listen.http.handlers.mongoose_graphql_handler]]`",
                    "`[outgoing_pools.rdbms.<name>.connection]`", "`[internal_databases.cets]`",
                    "`[modules.<module>]`", "`[[host_config]]`"):  # fmt: skip
        assert heading in text
    assert "| `c2s_state_timeout` | integer | `30000` |" in text
    assert '"meerkat@<hostname>"' in text


def test_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.problems == [f"{missing}: configuration file not found"]


def test_invalid_toml_is_one_problem_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[general\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: invalid TOML:")


def test_the_check_command_reports_problems_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[general]\nloglevel = "debug"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[general]\nhostz = 1\n")
    assert config_main(["check", str(good)]) == 0
    assert config_main(["check", str(bad)]) == 1
    assert "general.hostz: unknown key" in capsys.readouterr().err
    assert config_main([]) == 2


def _toml(text: str) -> ServerConfig:
    from meerkat.config import config_from_toml

    return config_from_toml(text)


def test_the_cluster_secret_is_generated_once_under_the_data_dir(tmp_path: Path) -> None:
    from meerkat.config import cluster_secret

    config = _toml(f'[general]\ndata_dir = "{tmp_path / "data"}"\n')
    first = cluster_secret(config)
    assert len(first) >= 32
    secret_file = tmp_path / "data" / "cluster.secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert cluster_secret(config) == first
    assert sorted(p.name for p in secret_file.parent.iterdir()) == ["cluster.secret"]


def test_a_configured_cluster_secret_wins(tmp_path: Path) -> None:
    from meerkat.config import cluster_secret

    config = _toml(
        f'[general]\ndata_dir = "{tmp_path}"\n'
        '[internal_databases.cets]\nsecret = "0123456789abcdef0123"\n'
    )
    assert cluster_secret(config) == b"0123456789abcdef0123"
    assert not (tmp_path / "cluster.secret").exists()


def test_every_commented_out_example_in_the_example_file_is_valid() -> None:
    from dataclasses import dataclass

    from meerkat.config import config_from_toml

    @dataclass(frozen=True)
    class Roster:
        pass

    @dataclass(frozen=True)
    class Ping:
        send_pings: bool = False

    option = re.compile(r"^(\s*)# ?(\s*(\[|[a-z_]+ = ).*)$")
    lines = (ROOT / "meerkat.toml").read_text(encoding="utf-8").splitlines()
    uncommented = [option.sub(r"\1\2", line) for line in lines]
    assert uncommented != lines
    config = config_from_toml("\n".join(uncommented), {"mod_roster": Roster, "mod_ping": Ping})
    assert config.general.node_name == "meerkat@xmpp1.example.com"
    assert config.listen.s2s[0].port == 5269
    assert config.modules == {"mod_roster": Roster(), "mod_ping": Ping(send_pings=True)}
    assert config.for_host("localhost").auth.methods == ("anonymous",)
