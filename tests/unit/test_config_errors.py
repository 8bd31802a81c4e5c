"""Every invalid configuration is refused with `path: problem`, all problems at once."""

# ruff: noqa: E501  (case tables read best with one case per line)

from __future__ import annotations

import pytest

from meerkat.config import ConfigError, config_from_toml


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus = 1", "bogus: unknown key"),
        ("[general]\nhostz = []", "general.hostz: unknown key"),
        ("[[listen.c2s]]\nport = 1\nportt = 2", "listen.c2s[0].portt: unknown key"),
        ("[[listen.c2s]]\nport = 1\n[listen.c2s.tls]\ncert = 'x'", "listen.c2s[0].tls.cert: unknown key"),
        ("[listen]\nsmtp = []", "listen.smtp: unknown key"),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mod_foo]]", "listen.http[0].handlers.mod_foo: unknown key"),
        ("[auth.password]\nsalt = 1", "auth.password.salt: unknown key"),
        ("[outgoing_pools.redis.default]", "outgoing_pools.redis: unknown key"),
        ("[outgoing_pools.rdbms.default]\nsize = 1\n[outgoing_pools.rdbms.default.connection]\ndriver = 'sqlite'", "outgoing_pools.rdbms.default.size: unknown key"),
        ("[internal_databases.mnesia]", "internal_databases.mnesia: unknown key"),
        ("[internal_databases.cets]\nexpire = 5", "internal_databases.cets.expire: unknown key"),
        ("[shaper.normal]\nmax_rate = 1\nburst = 2", "shaper.normal.burst: unknown key"),
        ("[acl]\nlocal = [{usr = 'a'}]", "acl.local[0].usr: unknown key"),
        ("[access]\nc2s = [{acl = 'all', value = 'allow', x = 1}]", "access.c2s[0].x: unknown key"),
        ("[s2s]\npolicy = 'deny'", "s2s.policy: unknown key"),
        ("[[host_config]]\nhost = 'localhost'\nfoo = 1", "host_config[0].foo: unknown key"),
        ("[modules.mod_nothing]", "modules.mod_nothing: unknown module"),
    ],
)  # fmt: skip
def test_unknown_keys_are_refused_at_every_level(text: str, expected: str) -> None:
    assert expected in problems(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[general]\nhosts = 'localhost'", 'general.hosts: expected an array, got "localhost"'),
        ("[general]\nworkers = 1.5", "general.workers: expected an integer, got 1.5"),
        ("[general]\nhide_service_name = 'no'", 'general.hide_service_name: expected a boolean, got "no"'),
        ("[general]\nregistration_timeout = 'never'", 'general.registration_timeout: expected an integer or one of "infinity", got "never"'),
        ("[[listen.c2s]]\nport = 'abc'", 'listen.c2s[0].port: expected an integer, got "abc"'),
        ("[listen]\nc2s = 5222", "listen.c2s: expected an array, got 5222"),
        ("[[listen.http]]\nport = 1\ntls = true", "listen.http[0].tls: expected a table, got true"),
        ("[auth]\nmax_users_per_domain = 'lots'", 'auth.max_users_per_domain: expected an integer or one of "infinity", got "lots"'),
        ("[shaper]\nnormal = 1000", "shaper.normal: expected a table, got 1000"),
        ("[access]\nc2s = [{acl = 'all', value = true}]", "access.c2s[0].value: expected an integer or a string, got true"),
    ],
)  # fmt: skip
def test_wrong_types_are_refused_with_their_value(text: str, expected: str) -> None:
    assert expected in problems(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[general]\nloglevel = 'verbose'", 'general.loglevel: expected one of "none", "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "all", got "verbose"'),
        ("[[listen.c2s]]\nport = 1\n[listen.c2s.tls]\nmode = 'ssl'", 'listen.c2s[0].tls.mode: expected one of "starttls_required", "starttls", "tls", "none", got "ssl"'),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mongoose_graphql_handler]]\nschema_endpoint = 'root'", 'listen.http[0].handlers.mongoose_graphql_handler[0].schema_endpoint: expected one of "admin", "domain_admin", "user", got "root"'),
        ("[auth]\nmethods = ['ldap']", 'auth.methods[0]: expected one of "rdbms", "anonymous", got "ldap"'),
        ("[auth.password]\nhash = ['md5']", 'auth.password.hash[0]: expected one of "sha", "sha224", "sha256", "sha384", "sha512", got "md5"'),
        ("[auth]\nsasl_mechanisms = ['digest_md5']", 'auth.sasl_mechanisms[0]: expected one of'),
        ("[outgoing_pools.rdbms.default.connection]\ndriver = 'oracle'", 'outgoing_pools.rdbms.default.connection.driver: expected one of "sqlite", "pgsql", "mysql", got "oracle"'),
        ("[internal_databases.cets]\nbackend = 'mnesia'", 'internal_databases.cets.backend: expected one of "rdbms", "file", got "mnesia"'),
        ("[s2s]\nuse_starttls = true", 'internal'),
    ],
)  # fmt: skip
def test_bad_choices_are_refused(text: str, expected: str) -> None:
    found = problems(text)
    if expected == "internal":  # a boolean where MongooseIM wants the string "false"
        assert found == [
            's2s.use_starttls: expected one of "false", "optional", "required", "required_trusted", got true'
        ]
    else:
        assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[listen.c2s]]\nport = 0", "listen.c2s[0].port: must be between 1 and 65535, got 0"),
        ("[[listen.c2s]]\nport = 65536", "listen.c2s[0].port: must be between 1 and 65535, got 65536"),
        ("[[listen.http]]\nport = -1", "listen.http[0].port: must be between 1 and 65535, got -1"),
        ("[[listen.service]]\nport = 70000\npassword = 's'", "listen.service[0].port: must be between 1 and 65535, got 70000"),
        ("[internal_databases.cets]\nport = 0", "internal_databases.cets.port: must be between 1 and 65535, got 0"),
        ("[outgoing_pools.rdbms.default.connection]\ndriver = 'pgsql'\ndatabase = 'd'\nusername = 'u'\nport = 99999", "outgoing_pools.rdbms.default.connection.port: must be between 1 and 65535, got 99999"),
        ("[s2s.outgoing]\nport = 0", "s2s.outgoing.port: must be between 1 and 65535, got 0"),
    ],
)  # fmt: skip
def test_ports_out_of_range_are_refused(text: str, expected: str) -> None:
    assert expected in problems(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[general]\nhosts = ['a.example']", 'general.default_server_domain: "localhost" is not one of hosts'),
        ("[general]\nhosts = []", "general.hosts: at least one domain is required"),
        ("[general]\nhosts = ['a', 'a']\ndefault_server_domain = 'a'", 'general.hosts[1]: duplicate value "a"'),
        ("[general]\nnode_name = 'meerkat'", 'general.node_name: expected name@host, got "meerkat"'),
        ("[general]\nworkers = 0", "general.workers: must be at least 1, got 0"),
        ("[general]\nworkers = 2\n[internal_databases]", "general.workers: more than one worker needs [internal_databases.cets]"),
        ("[[listen.c2s]]\nport = 1\n[listen.c2s.tls]\nkeyfile = 'k.pem'", "listen.c2s[0].tls.keyfile: set without certfile"),
        ("[[listen.c2s]]\nport = 1\n[listen.c2s.tls]\nverify_mode = 'peer'", 'listen.c2s[0].tls.cacertfile: required when verify_mode = "peer"'),
        ("[[listen.c2s]]\nport = 5222\n[[listen.c2s]]\nport = 5222\nip_address = '127.0.0.1'", "listen.c2s[1].port: 5222 on 127.0.0.1 is already used by listen.c2s[0]"),
        ("[[listen.c2s]]\nport = 1\nip_address = 'localhost'", 'listen.c2s[0].ip_address: not an IP address: "localhost"'),
        ("[[listen.c2s]]\nport = 1\naccess = 'nobody'", 'listen.c2s[0].access: no access rule named "nobody"'),
        ("[[listen.c2s]]\nport = 1\nshaper = 'turbo'", 'listen.c2s[0].shaper: no rule or shaper named "turbo"'),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mongoose_graphql_handler]]\nschema_endpoint = 'admin'\nusername = 'a'", "listen.http[0].handlers.mongoose_graphql_handler[0].username: username and password must be set together"),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mongoose_graphql_handler]]\nschema_endpoint = 'user'\nusername = 'a'\npassword = 'b'", 'listen.http[0].handlers.mongoose_graphql_handler[0].username: only the "admin" endpoint takes credentials'),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mongoose_graphql_handler]]\nschema_endpoint = 'admin'\nallowed_categories = ['accounts']", 'listen.http[0].handlers.mongoose_graphql_handler[0].allowed_categories[0]: unknown category "accounts"'),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mod_bosh]]\npath = 'bind'", 'listen.http[0].handlers.mod_bosh[0].path: must start with "/", got "bind"'),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mod_websockets]]\n[[listen.http.handlers.mod_websockets]]", "listen.http[0].handlers.mod_websockets[1].path: /ws-xmpp is already served by mod_websockets[0]"),
        ("[[listen.http]]\nport = 1\n[[listen.http.handlers.mod_bosh]]", "listen.http[0].handlers.mod_bosh: BOSH is not implemented yet"),
        ("[[listen.service]]\nport = 8888", "listen.service[0].password: required key is missing"),
        ("[auth.password]\nhash = ['sha512']", 'auth.sasl_mechanisms[5]: scram_sha1 needs "sha" in password.hash'),
        ("[auth]\nmethods = []", "auth.methods: at least one method is required"),
        ("[auth.slowdown]\ndelay = 5000\nmax_delay = 1000", "auth.slowdown.max_delay: must be at least 5000, got 1000"),
        ("[outgoing_pools]", 'auth.methods: "rdbms" needs [outgoing_pools.rdbms.default]'),
        ("[outgoing_pools.rdbms.default]\nworkers = 1", "outgoing_pools.rdbms.default.connection: required key is missing"),
        ("[outgoing_pools.rdbms.default.connection]\ndriver = 'pgsql'", "outgoing_pools.rdbms.default.connection.database: required for driver \"pgsql\""),
        ("[outgoing_pools.rdbms.default]\nworkers = 0\n[outgoing_pools.rdbms.default.connection]\ndriver = 'sqlite'", "outgoing_pools.rdbms.default.workers: must be at least 1, got 0"),
        ("[internal_databases.cets]\nbackend = 'file'", 'internal_databases.cets.node_list_file: required when backend = "file"'),
        ("[internal_databases.cets]\nsecret = 'short'", "internal_databases.cets.secret: must be at least 16 characters long"),
        ("[shaper.normal]\nmax_rate = 0", "shaper.normal.max_rate: must be at least 1, got 0"),
        ("[acl]\nbad = [{user_regexp = '('}]", "acl.bad[0].user_regexp: invalid regular expression"),
        ("[acl]\nnet = [{ip = '10.0.0.0/33'}]", 'acl.net[0].ip: not an IP address or network: "10.0.0.0/33"'),
        ("[access]\nc2s = [{acl = 'friends', value = 'allow'}]", 'access.c2s[0].acl: no access class named "friends"'),
        ("[[host_config]]\nhost = 'other.example'", 'host_config[0].host: "other.example" is not one of general.hosts'),
        ("[[host_config]]\nhost = 'localhost'\n[[host_config]]\nhost = 'localhost'", 'host_config[1]: duplicate value "localhost"'),
    ],
)  # fmt: skip
def test_cross_field_rules_are_enforced(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_many_problems_are_collected_together_with_their_paths() -> None:
    text = """
        [general]
          hostz = ["x"]
          hosts = ["a.example", 3]
          loglevel = "loud"
        [[listen.c2s]]
          port = "abc"
        [[listen.c2s]]
          port = 70000
          extra = true
        [[listen.http]]
          port = 5280
          [[listen.http.handlers.mongoose_graphql_handler]]
            schema_endpoint = "admin"
            password = "only"
        [auth]
          methods = ["ldap"]
        [internal_databases.cets]
          backend = "file"
        [modules.mod_unknown]
    """
    assert problems(text) == [
        "general.hostz: unknown key",
        "general.hosts[1]: expected a string, got 3",
        'general.loglevel: expected one of "none", "emergency", "alert", "critical", "error", '
        '"warning", "notice", "info", "debug", "all", got "loud"',
        'listen.c2s[0].port: expected an integer, got "abc"',
        "listen.c2s[1].extra: unknown key",
        "listen.c2s[1].port: must be between 1 and 65535, got 70000",
        "listen.http[0].handlers.mongoose_graphql_handler[0].username: "
        "username and password must be set together",
        'auth.methods[0]: expected one of "rdbms", "anonymous", got "ldap"',
        'internal_databases.cets.node_list_file: required when backend = "file"',
        "modules.mod_unknown: unknown module",
    ]


def test_a_section_that_is_not_a_table_is_refused() -> None:
    assert problems('general = "x"') == ['general: expected a table, got "x"']
