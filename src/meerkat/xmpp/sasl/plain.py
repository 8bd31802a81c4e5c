"""SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, parsed strictly.

Only the message format lives here; checking the password against the stored record is
`meerkat.auth.password.check_password` (PBKDF2, so the caller runs it in a thread).
The mechanism must only be offered over TLS (see `mechanisms.offered_mechanisms`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SaslCondition, SaslFailure

__all__ = ["PlainCredentials", "format_plain", "parse_plain"]


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    """The three fields of a PLAIN message; `authzid` is None when the client sent none."""

    authzid: str | None
    authcid: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"PlainCredentials(authzid={self.authzid!r}, authcid={self.authcid!r})"


def parse_plain(message: bytes) -> PlainCredentials:
    """Split a PLAIN initial response; SaslFailure(malformed-request) for anything malformed."""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "PLAIN needs exactly two NUL bytes")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "PLAIN message is not UTF-8") from None
    if not authcid or not password:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "empty username or password")
    return PlainCredentials(authzid or None, authcid, password)


def format_plain(authcid: str, password: str, authzid: str | None = None) -> bytes:
    """Build a PLAIN initial response (client side)."""
    return f"{authzid or ''}\x00{authcid}\x00{password}".encode()
