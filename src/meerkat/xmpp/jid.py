"""JIDs (RFC 7622): parsing, PRECIS normalisation, and the `Jid` value type.

The localpart is enforced with the PRECIS UsernameCaseMapped profile (so it compares
case-insensitively), the resourcepart with OpaqueString, and the domainpart is lower-cased and
NFC-normalised with the structural checks of RFC 7622 §3.2. Normalisation is cached because the
same few thousand JIDs recur on every stanza.

Printable ASCII, what nearly every username and resource is, skips the PRECIS library: each
such character is PVALID in both classes and none has a width, normalisation or bidi
mapping, so the localpart profile only lower-cases it and the resourcepart profile leaves it
as it is (space is the one difference: allowed in resources, not in localparts). The
library's pure-Python rules cost more than the rest of a login's JID handling, and a first
login of a user is always a cache miss (tests compare both paths character by character).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any, NamedTuple

import precis_i18n

_USERNAME: Any = precis_i18n.get_profile("UsernameCaseMapped")
_OPAQUE: Any = precis_i18n.get_profile("OpaqueString")

MAX_PART_BYTES = 1023
_FORBIDDEN_LOCAL = frozenset("\"&'/:<>@")
_FORBIDDEN_DOMAIN = frozenset(" \t\r\n@/\\\"'<>&:?#[]")


class JidError(ValueError):
    """Raised for a string that is not a valid JID (maps to `jid-malformed`)."""


class Jid(NamedTuple):
    """A normalised JID. ``local`` and ``resource`` are empty strings when absent."""

    local: str
    domain: str
    resource: str = ""

    @staticmethod
    def parse(text: str) -> Jid:
        """Parse and normalise a JID string, raising `JidError` when invalid."""
        return _parse(text)

    @staticmethod
    def make(local: str, domain: str, resource: str = "") -> Jid:
        """Build a JID from parts, normalising each."""
        return Jid(
            prep_local(local) if local else "",
            prep_domain(domain),
            prep_resource(resource) if resource else "",
        )

    @property
    def bare(self) -> Jid:
        """This JID without its resource."""
        return Jid(self.local, self.domain) if self.resource else self

    @property
    def is_bare(self) -> bool:
        return not self.resource

    @property
    def is_full(self) -> bool:
        return bool(self.resource)

    @property
    def bare_str(self) -> str:
        return f"{self.local}@{self.domain}" if self.local else self.domain

    def with_resource(self, resource: str) -> Jid:
        return Jid(self.local, self.domain, resource)

    def __str__(self) -> str:
        base = f"{self.local}@{self.domain}" if self.local else self.domain
        return f"{base}/{self.resource}" if self.resource else base


@lru_cache(maxsize=65536)
def _parse(text: str) -> Jid:
    if not text:
        raise JidError("empty JID")
    slash = text.find("/")
    if slash >= 0:
        resource, rest = text[slash + 1 :], text[:slash]
        if not resource:
            raise JidError("empty resourcepart")
    else:
        resource, rest = "", text
    at = rest.find("@")
    if at >= 0:
        local, domain = rest[:at], rest[at + 1 :]
        if not local:
            raise JidError("empty localpart")
    else:
        local, domain = "", rest
    return Jid(
        prep_local(local) if local else "",
        prep_domain(domain),
        prep_resource(resource) if resource else "",
    )


def enforce_username(text: str) -> str:
    """PRECIS UsernameCaseMapped (RFC 8265 §3.3) of `text`; UnicodeError when disallowed."""
    if text.isascii() and text.isprintable() and text and " " not in text:
        return text.lower()
    result: str = _USERNAME.enforce(text)
    return result


def enforce_opaque(text: str) -> str:
    """PRECIS OpaqueString (RFC 8265 §4.2) of `text`; UnicodeError when disallowed."""
    if text.isascii() and text.isprintable() and text:
        return text
    result: str = _OPAQUE.enforce(text)
    return result


@lru_cache(maxsize=65536)
def prep_local(local: str) -> str:
    """Enforce the localpart profile (RFC 7622 §3.3)."""
    try:
        result = enforce_username(local)
    except UnicodeError as exc:
        raise JidError(f"invalid localpart: {exc}") from None
    if _FORBIDDEN_LOCAL.intersection(result):
        raise JidError("localpart contains a forbidden character")
    if len(result.encode()) > MAX_PART_BYTES:
        raise JidError("localpart too long")
    return result


@lru_cache(maxsize=4096)
def prep_domain(domain: str) -> str:
    """Normalise a domainpart (RFC 7622 §3.2): NFC, lower case, no trailing dot, valid labels."""
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        raise JidError("empty domainpart")
    if domain.startswith("[") and domain.endswith("]"):
        return domain  # IPv6 literal
    result = unicodedata.normalize("NFC", domain).lower()
    if _FORBIDDEN_DOMAIN.intersection(result) or any(ord(c) < 0x20 for c in result):
        raise JidError("domainpart contains a forbidden character")
    if len(result.encode()) > MAX_PART_BYTES:
        raise JidError("domainpart too long")
    for label in result.split("."):
        if not label or len(label.encode("utf-8")) > 63:
            raise JidError("invalid domain label")
    return result


@lru_cache(maxsize=65536)
def prep_resource(resource: str) -> str:
    """Enforce the resourcepart profile (RFC 7622 §3.4)."""
    try:
        result = enforce_opaque(resource)
    except UnicodeError as exc:
        raise JidError(f"invalid resourcepart: {exc}") from None
    if len(result.encode()) > MAX_PART_BYTES:
        raise JidError("resourcepart too long")
    return result


def parse_optional(text: str | None) -> Jid | None:
    """Parse a JID attribute that may be absent."""
    return None if text is None else _parse(text)
