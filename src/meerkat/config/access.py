"""Evaluate access rules against a JID: MongooseIM's `acl:match_rule` semantics, pure.

A rule is a list of `{acl, value}` entries tried in order; the first entry whose access
class contains the JID gives the value. No entry matching gives "deny". The rule names
"all" and "none" always give "allow" and "deny"; the class names "all" and "none" match
every JID and no JID. An unknown rule or class name matches nothing (the config loader
already refused unknown names, so this only happens with hand-built configs).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Collection, Mapping

from meerkat.config.schema import AccessRuleEntry, AclPattern

RuleValue = int | str


def match_rule(
    rules: Mapping[str, tuple[AccessRuleEntry, ...]],
    acls: Mapping[str, tuple[AclPattern, ...]],
    rule_name: str,
    jid_user: str,
    jid_server: str,
    ip: str | None = None,
    *,
    resource: str = "",
    host: str | None = None,
    hosted: Collection[str] = (),
) -> RuleValue:
    """The value rule `rule_name` gives the JID `jid_user@jid_server/resource`.

    `host` is the domain the rule is evaluated for ("current_domain"; default: the JID's
    domain), `hosted` all domains this server serves ("any_hosted_domain"), `ip` the
    client's address for `ip` patterns (a pattern with `ip` never matches without one).
    """
    if rule_name == "all":
        return "allow"
    if rule_name == "none":
        return "deny"
    for entry in rules.get(rule_name, ()):
        if match_acl(acls, entry.acl, jid_user, jid_server, ip,
                     resource=resource, host=host, hosted=hosted):  # fmt: skip
            return entry.value
    return "deny"


def constant_value(
    rules: Mapping[str, tuple[AccessRuleEntry, ...]],
    acls: Mapping[str, tuple[AclPattern, ...]],
    rule_name: str,
) -> RuleValue | None:
    """The value `match_rule` gives every JID and address for this rule, or None when it
    depends on them. Entries whose class has no pattern never match and are passed over;
    the first entry for class "all" decides."""
    if rule_name == "all":
        return "allow"
    if rule_name == "none":
        return "deny"
    for entry in rules.get(rule_name, ()):
        if entry.acl == "all":
            return entry.value
        if entry.acl != "none" and acls.get(entry.acl, ()):
            return None
    return "deny"


def match_acl(
    acls: Mapping[str, tuple[AclPattern, ...]],
    acl_name: str,
    jid_user: str,
    jid_server: str,
    ip: str | None = None,
    *,
    resource: str = "",
    host: str | None = None,
    hosted: Collection[str] = (),
) -> bool:
    """Whether the JID belongs to access class `acl_name` (any of its patterns matches)."""
    if acl_name == "all":
        return True
    if acl_name == "none":
        return False
    current = jid_server if host is None else host
    return any(
        match_pattern(p, jid_user, jid_server, ip, resource, current, hosted)
        for p in acls.get(acl_name, ())
    )


def match_pattern(
    pattern: AclPattern,
    user: str,
    server: str,
    ip: str | None,
    resource: str,
    current_domain: str,
    hosted: Collection[str],
) -> bool:
    """Whether one pattern matches: every condition it sets must hold."""
    domain_match = pattern.domain_match
    if domain_match == "none":
        return False
    if domain_match == "current_domain" and server != current_domain:
        return False
    if domain_match == "any_hosted_domain" and server not in hosted:
        return False
    checks = (
        (pattern.user, pattern.user_regexp, pattern.user_glob, user),
        (pattern.server, pattern.server_regexp, pattern.server_glob, server),
        (pattern.resource, pattern.resource_regexp, pattern.resource_glob, resource),
    )
    for exact, regexp, glob, actual in checks:
        if exact is not None and exact != actual:
            return False
        if regexp is not None and re.search(regexp, actual) is None:
            return False
        if glob is not None and not fnmatch.fnmatchcase(actual, glob):
            return False
    if pattern.ip is not None:
        return ip is not None and _in_network(ip, pattern.ip)
    return True


def _in_network(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
