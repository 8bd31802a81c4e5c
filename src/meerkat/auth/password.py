"""Stored password records in MongooseIM's format, and PLAIN verification against them.

Formats (the `users.pass_details` / `users.password` columns, MongooseIM 6.2):

- SCRAM, current: `==MULTI_SCRAM==,<iterations>` then, per hash in the fixed order
  sha, sha224, sha256, sha384, sha512: `,` + 10-char tag (`===SHA1===`, `==SHA224==`,
  `==SHA256==`, `==SHA384==`, `==SHA512==`) + `base64(salt)|base64(StoredKey)|base64(ServerKey)`.
- SCRAM, legacy (SHA-1 only, still read): `==SCRAM==,<StoredKey>,<ServerKey>,<salt>,<iterations>`.
- plain: the password itself (format = "plain", pass_details NULL).

Everything here is pure and synchronous; `make_record`, `check_password` and
`scram_credentials` on a plain record run PBKDF2, so async callers use `asyncio.to_thread`.
Passwords are prepared with PRECIS OpaqueString (RFC 8265) before hashing. Salts come from the
caller's `salt_factory` (e.g. `lambda: os.urandom(16)`), keeping randomness out of this module.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from meerkat.xmpp.sasl.scram import crypto
from meerkat.xmpp.sasl.scram.crypto import ScramCredentials, ScramHash

__all__ = [
    "CONFIG_HASHES",
    "InvalidRecord",
    "PasswordRecord",
    "PlainRecord",
    "ScramRecord",
    "check_password",
    "format_record",
    "make_record",
    "parse_record",
    "record_from_columns",
    "scram_credentials",
]

MULTI_PREFIX = "==MULTI_SCRAM=="
LEGACY_PREFIX = "==SCRAM=="
#: MongooseIM `auth.password.hash` names -> hash, in storage order.
CONFIG_HASHES: Mapping[str, ScramHash] = {
    "sha": crypto.SHA1,
    "sha224": crypto.SHA224,
    "sha256": crypto.SHA256,
    "sha384": crypto.SHA384,
    "sha512": crypto.SHA512,
}
_TAGS: Mapping[str, str] = {
    "SHA-1": "===SHA1===",
    "SHA-224": "==SHA224==",
    "SHA-256": "==SHA256==",
    "SHA-384": "==SHA384==",
    "SHA-512": "==SHA512==",
}
_BY_TAG = {tag: crypto.HASHES[name] for name, tag in _TAGS.items()}
_ORDER = tuple(_TAGS)


class InvalidRecord(ValueError):
    """A stored record that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class ScramRecord:
    """SCRAM credentials per hash, keyed by IANA hash name ("SHA-256")."""

    iterations: int
    credentials: Mapping[str, ScramCredentials]


@dataclass(frozen=True, slots=True)
class PlainRecord:
    """A password stored in plain text (`auth.password.format = "plain"`)."""

    password: str

    def __repr__(self) -> str:
        return "PlainRecord(<hidden>)"


PasswordRecord = ScramRecord | PlainRecord


def _hash(name: str) -> ScramHash:
    if name in CONFIG_HASHES:
        return CONFIG_HASHES[name]
    if name in crypto.HASHES:
        return crypto.HASHES[name]
    raise ValueError(f"unknown hash {name!r}")


def make_record(
    password: str,
    hashes: Iterable[str],
    iterations: int,
    salt_factory: Callable[[], bytes],
) -> str:
    """The `pass_details` string for `password`: one salt and PBKDF2 per hash.

    `hashes` are MongooseIM names ("sha", "sha256", ...) or IANA names ("SHA-256").
    ValueError for an empty hash list, unknown hash or a password PRECIS rejects.
    """
    chosen = {_hash(name).name for name in hashes}
    if not chosen:
        raise ValueError("at least one hash is needed")
    prepared = crypto.prepare_password(password)
    credentials = {}
    for name in _ORDER:
        if name in chosen:
            h, salt = crypto.HASHES[name], salt_factory()
            salted = crypto.salted_password(h, prepared, salt, iterations)
            credentials[name] = crypto.credentials_from_salted(h, salted, salt, iterations)
    return format_record(ScramRecord(iterations, credentials))


def format_record(record: ScramRecord) -> str:
    """Serialize in the MULTI_SCRAM format (hashes in MongooseIM's order)."""
    parts = [MULTI_PREFIX, str(record.iterations)]
    for name in _ORDER:
        if name in record.credentials:
            c = record.credentials[name]
            fields = (_b64(c.salt), _b64(c.stored_key), _b64(c.server_key))
            parts.append(_TAGS[name] + "|".join(fields))
    return ",".join(parts)


def parse_record(text: str) -> PasswordRecord:
    """Parse a stored value: MULTI_SCRAM, legacy SCRAM, otherwise a plain-text password.

    A plain password that itself starts with a SCRAM prefix is ambiguous here; stores that
    have both columns should call `record_from_columns`, which is not.
    """
    if text.startswith(MULTI_PREFIX + ","):
        return _parse_multi(text)
    if text.startswith(LEGACY_PREFIX + ","):
        return _parse_legacy(text)
    return PlainRecord(text)


def record_from_columns(password: str, pass_details: str | None) -> PasswordRecord:
    """The record from MongooseIM's `users` columns: SCRAM in pass_details, else plain."""
    if pass_details is None:
        return PlainRecord(password)
    record = parse_record(pass_details)
    if isinstance(record, PlainRecord):
        raise InvalidRecord("pass_details is not a SCRAM record")
    return record


def check_password(record: PasswordRecord | str, password: str) -> bool:
    """Verify a PLAIN password against a record, in constant time per compared value.

    SCRAM records are checked with the first hash present (weakest first, as MongooseIM does:
    it is also the cheapest). Empty and PRECIS-invalid passwords never match.
    """
    if isinstance(record, str):
        record = parse_record(record)
    try:
        prepared = crypto.prepare_password(password)
    except ValueError:
        return False
    if isinstance(record, PlainRecord):
        try:
            stored = crypto.prepare_password(record.password)
        except ValueError:
            return False
        return hmac.compare_digest(prepared, stored)
    for name in _ORDER:
        if name in record.credentials:
            h, c = crypto.HASHES[name], record.credentials[name]
            salted = crypto.salted_password(h, prepared, c.salt, c.iterations)
            computed = crypto.stored_key(h, crypto.client_key(h, salted))
            return hmac.compare_digest(computed, c.stored_key)
    return False


def scram_credentials(
    record: PasswordRecord,
    hash_name: str,
    *,
    salt_factory: Callable[[], bytes],
    iterations: int,
) -> ScramCredentials | None:
    """Credentials to run SCRAM with `hash_name` ("SHA-256" or "sha256"); None if absent.

    For a plain record they are derived on the spot with a fresh salt (PBKDF2: use a thread);
    `salt_factory` and `iterations` are only used then.
    """
    h = _hash(hash_name)
    if isinstance(record, ScramRecord):
        return record.credentials.get(h.name)
    return crypto.credentials_from_password(h, record.password, salt_factory(), iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    # `base64.b64decode(text, validate=True)` without its Python wrapper (nine per SCRAM login).
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidRecord("invalid base64 in password record") from None


def _iterations(text: str) -> int:
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidRecord("invalid iteration count in password record")
    return int(text)


def _parse_multi(text: str) -> ScramRecord:
    _, iterations_text, *entries = text.split(",")
    iterations = _iterations(iterations_text)
    credentials = {}
    for entry in entries:
        h = _BY_TAG.get(entry[:10])
        fields = entry[10:].split("|")
        if h is None or len(fields) != 3 or h.name in credentials:
            raise InvalidRecord("invalid hash entry in password record")
        salt, stored, server = map(_unb64, fields)
        if len(stored) != h.digest_size or len(server) != h.digest_size:
            raise InvalidRecord(f"wrong key length for {h.name}")
        credentials[h.name] = ScramCredentials(salt, iterations, stored, server)
    if not credentials:
        raise InvalidRecord("password record has no hashes")
    return ScramRecord(iterations, credentials)


def _parse_legacy(text: str) -> ScramRecord:
    fields = text.split(",")
    if len(fields) != 5:
        raise InvalidRecord("invalid legacy SCRAM record")
    stored, server, salt = map(_unb64, fields[1:4])
    iterations = _iterations(fields[4])
    if len(stored) != crypto.SHA1.digest_size or len(server) != crypto.SHA1.digest_size:
        raise InvalidRecord("wrong key length in legacy SCRAM record")
    creds = ScramCredentials(salt, iterations, stored, server)
    return ScramRecord(iterations, {crypto.SHA1.name: creds})
