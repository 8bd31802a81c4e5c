"""The Hashed Token mechanisms (draft-schmaus-kitten-sasl-ht-08) used by FAST (XEP-0484).

`HT-<hash>-<cb>`: the client proves it holds a token with one message, no round trip:

    initial response  = authcid NUL HMAC(token, "Initiator" || cb-data)
    additional data   = HMAC(token, "Responder" || cb-data)        (server -> client)

`cb-data` is the channel-binding data of the type the name selects: ``NONE`` (empty),
``ENDP`` (tls-server-end-point), ``EXPR`` (tls-exporter), ``UNIQ`` (tls-unique, which TLS 1.3
lacks and we never offer). Only SHA-256 is defined for XMPP use.

The hard part is storage. The server must compute the HMAC, so it needs a key-equivalent of
the token. HMAC hashes keys longer than the hash's block size before use (RFC 2104 §2), so
for tokens longer than 64 bytes ``HMAC(token, m) == HMAC(SHA-256(token), m)``: the server
stores only `token_key(token)` and never the token itself. (The stored key still
authenticates with HT-*: protect the table like password hashes.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass

from .channel_binding import TLS_EXPORTER, TLS_SERVER_END_POINT
from .errors import SaslCondition, SaslFailure

__all__ = [
    "HT_MECHANISMS",
    "MIN_TOKEN_BYTES",
    "HtInitial",
    "binding_type",
    "format_initial",
    "initiator_hash",
    "offered_ht_mechanisms",
    "parse_initial",
    "responder_hash",
    "token_key",
    "verify_initiator",
]

_BLOCK_SIZE = 64  # SHA-256
MIN_TOKEN_BYTES = _BLOCK_SIZE + 1
"""Tokens must be longer than the block size for `token_key` to be HMAC-equivalent."""

#: Mechanism -> channel-binding type it needs (None: no binding), in preference order.
HT_MECHANISMS: dict[str, str | None] = {
    "HT-SHA-256-EXPR": TLS_EXPORTER,
    "HT-SHA-256-ENDP": TLS_SERVER_END_POINT,
    "HT-SHA-256-NONE": None,
}


@dataclass(frozen=True, slots=True)
class HtInitial:
    """A parsed initial response."""

    authcid: str
    initiator_hash: bytes


def binding_type(mechanism: str) -> str | None:
    """The channel-binding type a mechanism uses; KeyError for an unknown mechanism."""
    return HT_MECHANISMS[mechanism]


def offered_ht_mechanisms(channel_bindings: Collection[str]) -> list[str]:
    """The HT mechanisms usable on a connection with these binding types, preferred first."""
    return [m for m, cb in HT_MECHANISMS.items() if cb is None or cb in channel_bindings]


def token_key(token: str) -> bytes:
    """What the server stores: SHA-256 of the token (HMAC-equivalent for long tokens)."""
    raw = token.encode()
    if len(raw) < MIN_TOKEN_BYTES:
        raise ValueError(f"HT tokens must be at least {MIN_TOKEN_BYTES} bytes")
    return hashlib.sha256(raw).digest()


def _hmac(key: bytes, label: bytes, cb_data: bytes) -> bytes:
    return hmac.digest(key, label + cb_data, "sha256")


def initiator_hash(key: bytes, cb_data: bytes = b"") -> bytes:
    """HMAC(token, "Initiator" || cb-data), from the token or its `token_key`."""
    return _hmac(key, b"Initiator", cb_data)


def responder_hash(key: bytes, cb_data: bytes = b"") -> bytes:
    """HMAC(token, "Responder" || cb-data): the server's proof (SASL2 additional-data)."""
    return _hmac(key, b"Responder", cb_data)


def verify_initiator(key: bytes, proof: bytes, cb_data: bytes = b"") -> bool:
    """Constant-time check of the client's proof."""
    return hmac.compare_digest(initiator_hash(key, cb_data), proof)


def parse_initial(message: bytes) -> HtInitial:
    """Split ``authcid NUL hash``; SaslFailure(malformed-request) when malformed."""
    authcid, sep, proof = message.partition(b"\x00")
    if not sep or not authcid or len(proof) != hashlib.sha256().digest_size:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "HT needs authcid NUL 32-byte hash")
    try:
        name = authcid.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "authcid is not UTF-8") from None
    return HtInitial(name, proof)


def format_initial(authcid: str, token: str, cb_data: bytes = b"") -> bytes:
    """Client side: the initial response for a token."""
    return authcid.encode() + b"\x00" + initiator_hash(token.encode(), cb_data)
