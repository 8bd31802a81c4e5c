"""Access rules and access classes: MongooseIM's evaluation order and match semantics."""

from __future__ import annotations

from meerkat.config import config_from_toml, constant_value, match_acl, match_rule
from meerkat.config.schema import AccessRuleEntry, AclPattern, default_access, default_acls

ACLS = {
    "local": (AclPattern(),),
    "admin": (AclPattern(user="alice", server="localhost"),),
    "blocked": (AclPattern(user_glob="spam*", match="all"),),
    "bots": (AclPattern(resource_regexp="^bot-"),),
    "hosted": (AclPattern(match="any_hosted_domain"),),
    "office": (AclPattern(ip="10.0.0.0/8", match="all"),),
    "example_users": (AclPattern(server_regexp=r"\.example$"),),
    "nobody": (AclPattern(match="none"),),
}
RULES = {
    "c2s": (AccessRuleEntry("blocked", "deny"), AccessRuleEntry("all", "allow")),
    "max_user_sessions": (AccessRuleEntry("admin", 100), AccessRuleEntry("all", 10)),
    "register": (AccessRuleEntry("local", "allow"),),
}


def test_the_first_matching_entry_gives_the_value() -> None:
    assert match_rule(RULES, ACLS, "max_user_sessions", "alice", "localhost") == 100
    assert match_rule(RULES, ACLS, "max_user_sessions", "bob", "localhost") == 10


def test_no_matching_entry_denies() -> None:
    assert match_rule(RULES, ACLS, "register", "bob", "remote.example", host="localhost") == "deny"


def test_unknown_rules_deny_and_the_builtin_rules_allow_or_deny() -> None:
    assert match_rule(RULES, ACLS, "no_such_rule", "bob", "localhost") == "deny"
    assert match_rule(RULES, ACLS, "all", "bob", "localhost") == "allow"
    assert match_rule(RULES, ACLS, "none", "bob", "localhost") == "deny"


def test_an_empty_pattern_matches_users_of_the_current_domain_only() -> None:
    assert match_acl(ACLS, "local", "bob", "localhost")
    assert match_acl(ACLS, "local", "bob", "localhost", host="localhost")
    assert not match_acl(ACLS, "local", "bob", "remote.example", host="localhost")


def test_user_and_server_must_both_match() -> None:
    assert match_acl(ACLS, "admin", "alice", "localhost", host="other")
    assert not match_acl(ACLS, "admin", "alice", "other")
    assert not match_acl(ACLS, "admin", "bob", "localhost")


def test_globs_regexps_and_resources() -> None:
    assert match_rule(RULES, ACLS, "c2s", "spammer", "anywhere", host="localhost") == "deny"
    assert match_rule(RULES, ACLS, "c2s", "bob", "localhost") == "allow"
    assert match_acl(ACLS, "bots", "bob", "localhost", resource="bot-1")
    assert not match_acl(ACLS, "bots", "bob", "localhost", resource="phone")
    assert match_acl(ACLS, "example_users", "bob", "chat.example", host="localhost")
    assert not match_acl(ACLS, "example_users", "bob", "example.org")


def test_any_hosted_domain_and_none() -> None:
    hosted = {"localhost", "chat.example"}
    assert match_acl(ACLS, "hosted", "bob", "chat.example", host="localhost", hosted=hosted)
    assert not match_acl(ACLS, "hosted", "bob", "far.away", host="localhost", hosted=hosted)
    assert not match_acl(ACLS, "nobody", "bob", "localhost")
    assert not match_acl(ACLS, "none", "bob", "localhost")
    assert match_acl(ACLS, "all", "bob", "anything")


def test_ip_patterns_need_a_client_address_inside_the_network() -> None:
    assert match_acl(ACLS, "office", "bob", "x", "10.1.2.3")
    assert not match_acl(ACLS, "office", "bob", "x", "192.168.1.1")
    assert not match_acl(ACLS, "office", "bob", "x")
    assert not match_acl(ACLS, "office", "bob", "x", "not-an-ip")


def test_an_unknown_access_class_matches_nobody() -> None:
    assert not match_acl(ACLS, "ghosts", "bob", "localhost")


def test_the_default_rules_let_users_in_and_keep_registration_closed() -> None:
    rules, acls = default_access(), default_acls()
    assert match_rule(rules, acls, "c2s", "bob", "localhost") == "allow"
    assert match_rule(rules, acls, "c2s_shaper", "bob", "localhost") == "normal"
    assert match_rule(rules, acls, "register", "bob", "localhost") == "deny"
    assert match_rule(rules, acls, "max_user_offline_messages", "bob", "localhost") == 100


def test_rules_from_a_file_evaluate_as_written() -> None:
    config = config_from_toml(
        """
        [acl]
          local = [{}]
          admin = [{user = "root"}]
          blocked = []
        [access]
          c2s = [{acl = "all", value = "allow"}]
          c2s_shaper = [{acl = "admin", value = "none"}, {acl = "all", value = "normal"}]
          register = [{acl = "local", value = "allow"}]
        """
    )
    assert match_rule(config.access, config.acl, "register", "new", "localhost") == "allow"
    assert match_rule(config.access, config.acl, "c2s_shaper", "root", "localhost") == "none"


def test_a_rule_is_constant_only_when_every_jid_and_address_gets_the_same_value() -> None:
    acls = {**ACLS, "empty": ()}
    rules = {
        **RULES,
        "open": (AccessRuleEntry("empty", "deny"), AccessRuleEntry("all", "allow")),
        "closed": (AccessRuleEntry("none", "allow"),),
    }
    assert constant_value(rules, acls, "c2s") is None  # "blocked" has a pattern
    assert constant_value(rules, acls, "max_user_sessions") is None
    assert constant_value(rules, acls, "open") == "allow"
    assert constant_value(rules, acls, "closed") == "deny"
    assert constant_value(rules, acls, "no_such_rule") == "deny"
    assert constant_value(rules, acls, "all") == "allow"
    for name in ("open", "closed", "no_such_rule", "all", "none"):
        value = constant_value(rules, acls, name)
        for user, server, ip in [("spammer", "localhost", "10.1.2.3"), ("bob", "x.example", None)]:
            assert match_rule(rules, acls, name, user, server, ip, host="localhost") == value


def test_the_default_rules_a_login_asks_are_constant() -> None:
    rules, acls = default_access(), default_acls()
    assert constant_value(rules, acls, "c2s") == "allow"
    assert constant_value(rules, acls, "max_user_sessions") == 10
