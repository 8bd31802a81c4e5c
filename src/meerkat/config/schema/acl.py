"""`[shaper]`, `[acl]` and `[access]`: traffic shapers, access classes and access rules.

The defaults are MongooseIM's shipped ones, except that in-band registration is denied.
Evaluation lives in `meerkat.config.access`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from meerkat.config.schema._util import check_min, doc, quote

#: Access class names every configuration knows without defining them.
BUILTIN_ACLS = frozenset({"all", "none"})
#: Access rule names every configuration knows without defining them.
BUILTIN_RULES = frozenset({"all", "none"})


@dataclass(frozen=True)
class Shaper:
    """`[shaper.<name>]`: a token bucket limiting the bytes per second read from a socket."""

    max_rate: int = field(metadata=doc("Bytes per second (required)."))

    def validate(self) -> list[str]:
        """A positive rate."""
        return check_min("max_rate", self.max_rate, 1)


@dataclass(frozen=True)
class AclPattern:
    """One pattern of an access class; a JID matches when every condition given holds.
    `{}` matches every user of the current domain."""

    match: Literal["all", "current_domain", "any_hosted_domain", "none"] | None = field(
        default=None,
        metadata=doc(
            'Which domains: "current_domain" (the domain the rule is evaluated for), '
            '"any_hosted_domain", "all" (remote users too) or "none". Unset: '
            '"current_domain", or "all" when a server condition is given.'
        ),
    )
    user: str | None = field(default=None, metadata=doc("Exact user name (local part)."))
    server: str | None = field(default=None, metadata=doc("Exact domain."))
    resource: str | None = field(default=None, metadata=doc("Exact resource."))
    user_regexp: str | None = field(
        default=None, metadata=doc("Regular expression searched in the user name.")
    )
    server_regexp: str | None = field(
        default=None, metadata=doc("Regular expression searched in the domain.")
    )
    resource_regexp: str | None = field(
        default=None, metadata=doc("Regular expression searched in the resource.")
    )
    user_glob: str | None = field(
        default=None, metadata=doc("Glob (`*`, `?`) the user name must match.")
    )
    server_glob: str | None = field(default=None, metadata=doc("Glob the domain must match."))
    resource_glob: str | None = field(default=None, metadata=doc("Glob the resource must match."))
    ip: str | None = field(
        default=None, metadata=doc('Client address or network, e.g. "10.0.0.0/8".')
    )

    def validate(self) -> list[str]:
        """Regular expressions compile, networks parse."""
        problems: list[str] = []
        for key in ("user_regexp", "server_regexp", "resource_regexp"):
            pattern = getattr(self, key)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems.append(f"{key}: invalid regular expression: {exc}")
        if self.ip is not None:
            try:
                ipaddress.ip_network(self.ip, strict=False)
            except ValueError:
                problems.append(f"ip: not an IP address or network: {quote(self.ip)}")
        return problems

    @property
    def domain_match(self) -> str:
        """The effective `match` (see the field's documentation)."""
        if self.match is not None:
            return self.match
        if (
            self.server is not None
            or self.server_regexp is not None
            or self.server_glob is not None
        ):
            return "all"
        return "current_domain"


@dataclass(frozen=True)
class AccessRuleEntry:
    """One line of an access rule: when the JID is in access class `acl`, the rule's value
    is `value`."""

    acl: str = field(metadata=doc('Access class name, or "all" / "none" (required).'))
    value: int | str = field(
        metadata=doc('What the rule returns: "allow", "deny", a number or a shaper name.')
    )


Acls = dict[str, tuple[AclPattern, ...]]
AccessRules = dict[str, tuple[AccessRuleEntry, ...]]


def default_shapers() -> dict[str, Shaper]:
    """MongooseIM's shipped shapers: normal (clients) and fast (servers)."""
    return {"normal": Shaper(max_rate=1000), "fast": Shaper(max_rate=50000)}


def default_acls() -> Acls:
    """`local` = users of the current domain; `admin` and `blocked` start empty."""
    return {"local": (AclPattern(),), "admin": (), "blocked": ()}


def _rule(*entries: tuple[str, int | str]) -> tuple[AccessRuleEntry, ...]:
    return tuple(AccessRuleEntry(acl=acl, value=value) for acl, value in entries)


def default_access() -> AccessRules:
    """MongooseIM's shipped access rules; in-band registration is denied by default."""
    return {
        "c2s": _rule(("blocked", "deny"), ("all", "allow")),
        "c2s_shaper": _rule(("admin", "none"), ("all", "normal")),
        "s2s_shaper": _rule(("all", "fast")),
        "local": _rule(("local", "allow")),
        "max_user_sessions": _rule(("all", 10)),
        "max_user_offline_messages": _rule(("admin", 5000), ("all", 100)),
        "register": _rule(("all", "deny")),
        "muc_admin": _rule(("admin", "allow")),
        "muc_create": _rule(("local", "allow")),
        "muc": _rule(("all", "allow")),
    }


def check_rules(rules: AccessRules, known_acls: set[str], where: str) -> list[str]:
    """Problems of access rules naming access classes nobody defined."""
    problems: list[str] = []
    for name, entries in rules.items():
        for index, entry in enumerate(entries):
            if entry.acl not in known_acls and entry.acl not in BUILTIN_ACLS:
                problems.append(
                    f"{where}.{name}[{index}].acl: no access class named {quote(entry.acl)}"
                )
    return problems
