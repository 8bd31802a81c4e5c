"""SCRAM key derivation (RFC 5802 §3): hashes, stored credentials, proofs and signatures.

Split so that the expensive step is separate and cacheable: `salted_password` runs PBKDF2
(callers put it in a thread, and the benchmark client caches it); everything else is a few HMACs.
Passwords enter as bytes already prepared with `prepare_password` (PRECIS OpaqueString, RFC 8265),
the profile RFC 7622-era XMPP uses in place of SASLprep.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from precis_i18n import get_profile

__all__ = [
    "HASHES",
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "ScramCredentials",
    "ScramHash",
    "client_key",
    "client_proof",
    "client_signature",
    "credentials_from_password",
    "credentials_from_salted",
    "prepare_password",
    "recover_client_key",
    "salted_password",
    "server_key",
    "server_signature",
    "stored_key",
]


@dataclass(frozen=True, slots=True)
class ScramHash:
    """One SCRAM hash function: its IANA suffix ("SHA-256") and hashlib name ("sha256")."""

    name: str
    hashlib_name: str
    digest_size: int

    @property
    def mechanism(self) -> str:
        """The SASL mechanism name without channel binding, e.g. "SCRAM-SHA-256"."""
        return f"SCRAM-{self.name}"

    @property
    def plus_mechanism(self) -> str:
        """The SASL mechanism name with channel binding, e.g. "SCRAM-SHA-256-PLUS"."""
        return f"SCRAM-{self.name}-PLUS"


SHA1 = ScramHash("SHA-1", "sha1", 20)
SHA224 = ScramHash("SHA-224", "sha224", 28)
SHA256 = ScramHash("SHA-256", "sha256", 32)
SHA384 = ScramHash("SHA-384", "sha384", 48)
SHA512 = ScramHash("SHA-512", "sha512", 64)
#: Every supported hash by its IANA name, weakest first (MongooseIM's storage order).
HASHES: Mapping[str, ScramHash] = {h.name: h for h in (SHA1, SHA224, SHA256, SHA384, SHA512)}


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a server stores per user and hash: enough to verify, not enough to log in."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


_OPAQUE_STRING = get_profile("OpaqueString")


def prepare_password(password: str) -> bytes:
    """Prepare a password with PRECIS OpaqueString (RFC 8265 §4.2) and encode it as UTF-8.

    Raises ValueError for passwords the profile rejects (empty, control characters, ...).
    """
    try:
        prepared: str = _OPAQUE_STRING.enforce(password)
    except UnicodeError as exc:
        # Only the reason: the exception text would quote the offending character.
        reason = getattr(exc, "reason", "invalid")
        raise ValueError(f"password rejected by PRECIS OpaqueString: {reason}") from None
    return prepared.encode()


def salted_password(h: ScramHash, password: bytes, salt: bytes, iterations: int) -> bytes:
    """SaltedPassword := Hi(password, salt, i), i.e. PBKDF2-HMAC. The expensive step."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    return hashlib.pbkdf2_hmac(h.hashlib_name, password, salt, iterations)


def client_key(h: ScramHash, salted: bytes) -> bytes:
    """ClientKey := HMAC(SaltedPassword, "Client Key")."""
    return hmac.digest(salted, b"Client Key", h.hashlib_name)


def stored_key(h: ScramHash, key: bytes) -> bytes:
    """StoredKey := H(ClientKey)."""
    return hashlib.new(h.hashlib_name, key).digest()


def server_key(h: ScramHash, salted: bytes) -> bytes:
    """ServerKey := HMAC(SaltedPassword, "Server Key")."""
    return hmac.digest(salted, b"Server Key", h.hashlib_name)


def credentials_from_salted(
    h: ScramHash, salted: bytes, salt: bytes, iterations: int
) -> ScramCredentials:
    """Stored credentials from an already computed SaltedPassword."""
    return ScramCredentials(
        salt=salt,
        iterations=iterations,
        stored_key=stored_key(h, client_key(h, salted)),
        server_key=server_key(h, salted),
    )


def credentials_from_password(
    h: ScramHash, password: str, salt: bytes, iterations: int
) -> ScramCredentials:
    """Stored credentials for a plain-text password (PRECIS-prepared here). Runs PBKDF2."""
    salted = salted_password(h, prepare_password(password), salt, iterations)
    return credentials_from_salted(h, salted, salt, iterations)


def client_signature(h: ScramHash, stored: bytes, auth_message: bytes) -> bytes:
    """ClientSignature := HMAC(StoredKey, AuthMessage)."""
    return hmac.digest(stored, auth_message, h.hashlib_name)


def client_proof(h: ScramHash, salted: bytes, auth_message: bytes) -> bytes:
    """ClientProof := ClientKey XOR ClientSignature (the client's side)."""
    key = client_key(h, salted)
    return _xor(key, client_signature(h, stored_key(h, key), auth_message))


def recover_client_key(h: ScramHash, stored: bytes, auth_message: bytes, proof: bytes) -> bytes:
    """ClientKey := ClientProof XOR ClientSignature (the server's side of the check)."""
    return _xor(proof, client_signature(h, stored, auth_message))


def server_signature(h: ScramHash, server: bytes, auth_message: bytes) -> bytes:
    """ServerSignature := HMAC(ServerKey, AuthMessage)."""
    return hmac.digest(server, auth_message, h.hashlib_name)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
