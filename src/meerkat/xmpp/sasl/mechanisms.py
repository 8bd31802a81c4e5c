"""SASL mechanism names, their order, and which ones a connection may be offered.

MongooseIM configures mechanisms by short names (`auth.sasl_mechanisms = ["scram_sha256_plus",
"plain", ...]`); the wire uses IANA names (`SCRAM-SHA-256-PLUS`, `PLAIN`). The offer depends on
the connection:

- -PLUS variants only when the connection has at least one channel-binding type;
- PLAIN only over TLS (RFC 6120 §6.4.1: it sends the password in the clear) unless allowed;
- SCRAM hashes only when the stored credentials include that hash (a MULTI_SCRAM record without
  SHA-512 cannot serve SCRAM-SHA-512); with plain-text storage every hash works.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from .channel_binding import PREFERENCE

__all__ = [
    "ANONYMOUS",
    "CONFIG_NAMES",
    "DEFAULT_CONFIG",
    "EXTERNAL",
    "OAUTH",
    "PLAIN",
    "choose_mechanism",
    "from_config",
    "offered_channel_bindings",
    "offered_mechanisms",
    "scram_hash_name",
]

PLAIN = "PLAIN"
ANONYMOUS = "ANONYMOUS"
OAUTH = "X-OAUTH"
EXTERNAL = "EXTERNAL"
DIGEST_MD5 = "DIGEST-MD5"

_SCRAM_CONFIG = {
    "sha512": "SHA-512",
    "sha384": "SHA-384",
    "sha256": "SHA-256",
    "sha224": "SHA-224",
    "sha1": "SHA-1",
}
#: MongooseIM config name -> SASL mechanism name.
CONFIG_NAMES: dict[str, str] = {}
for _short, _iana in _SCRAM_CONFIG.items():
    CONFIG_NAMES[f"scram_{_short}_plus"] = f"SCRAM-{_iana}-PLUS"
    CONFIG_NAMES[f"scram_{_short}"] = f"SCRAM-{_iana}"
CONFIG_NAMES.update(
    plain=PLAIN, anonymous=ANONYMOUS, oauth=OAUTH, external=EXTERNAL, digest=DIGEST_MD5
)
#: MongooseIM 6.2's default `auth.sasl_mechanisms` (strongest first, -PLUS before plain SCRAM).
DEFAULT_CONFIG: tuple[str, ...] = tuple(
    name for name in CONFIG_NAMES if name not in ("external", "digest")
)


def from_config(names: Iterable[str]) -> list[str]:
    """Map config names to SASL names, keeping order; ValueError names an unknown entry."""
    result = []
    for name in names:
        if name not in CONFIG_NAMES:
            raise ValueError(f"unknown SASL mechanism {name!r}")
        result.append(CONFIG_NAMES[name])
    return result


def scram_hash_name(mechanism: str) -> str | None:
    """Hash name of a SCRAM mechanism ("SCRAM-SHA-256-PLUS" -> "SHA-256"), else None."""
    if not mechanism.startswith("SCRAM-"):
        return None
    return mechanism.removeprefix("SCRAM-").removesuffix("-PLUS")


def offered_mechanisms(
    configured: Sequence[str],
    *,
    tls: bool,
    channel_bindings: Collection[str] = (),
    scram_hashes: Collection[str] | None = None,
    plain_without_tls: bool = False,
) -> list[str]:
    """The mechanisms to advertise, in configured order.

    `configured` holds SASL names (see `from_config`); `channel_bindings` the binding types this
    connection has; `scram_hashes` the IANA hash names stored for users (None: any).
    Mechanisms this server does not implement (DIGEST-MD5) are never offered.
    """
    offered = []
    for mech in configured:
        hash_name = scram_hash_name(mech)
        if hash_name is not None:
            if mech.endswith("-PLUS") and not channel_bindings:
                continue
            if scram_hashes is not None and hash_name not in scram_hashes:
                continue
        elif mech == PLAIN:
            if not (tls or plain_without_tls):
                continue
        elif mech == DIGEST_MD5:
            continue
        offered.append(mech)
    return offered


def offered_channel_bindings(available: Iterable[str]) -> list[str]:
    """Binding types to advertise (XEP-0440), preferred first."""
    available = set(available)
    return [t for t in PREFERENCE if t in available]


def choose_mechanism(offered: Collection[str], preferred: Sequence[str]) -> str | None:
    """Client side: the first of `preferred` that the server offered."""
    return next((m for m in preferred if m in offered), None)
