"""Channel-binding data for the SCRAM -PLUS mechanisms, computed from bytes the TLS layer hands in.

Two types are supported, both pure functions of their inputs:

- `tls-exporter` (RFC 9266): 32 bytes of TLS keying material exported with the label
  "EXPORTER-Channel-Binding" and an empty context. Only defined for TLS 1.3; on older TLS
  versions it must not be offered (RFC 9266 §3).
- `tls-server-end-point` (RFC 5929 §4.1): a hash of the server certificate (DER). The hash is the
  one of the certificate's signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256.

The hard part is the certificate: to know its signature hash we read the outer
`signatureAlgorithm` of the X.509 structure with a tiny DER walker (stdlib only, like the rest
of `meerkat.xmpp`). Algorithms without a defined hash (Ed25519, Ed448, unknown OIDs) raise
`UnsupportedCertificate`; the server then simply does not offer that binding.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from functools import lru_cache

__all__ = [
    "TLS_EXPORTER",
    "TLS_EXPORTER_LABEL",
    "TLS_EXPORTER_LENGTH",
    "TLS_SERVER_END_POINT",
    "UnsupportedCertificate",
    "available_channel_bindings",
    "certificate_signature_hash",
    "tls_exporter_data",
    "tls_server_end_point_data",
]

TLS_EXPORTER = "tls-exporter"
TLS_SERVER_END_POINT = "tls-server-end-point"
#: Preference order when several types are available (RFC 9266 is the TLS 1.3 successor).
PREFERENCE = (TLS_EXPORTER, TLS_SERVER_END_POINT)
TLS_EXPORTER_LABEL = b"EXPORTER-Channel-Binding"
TLS_EXPORTER_LENGTH = 32

_RSA = "1.2.840.113549.1.1."
_ECDSA = "1.2.840.10045.4."
#: Signature algorithm OID -> hashlib name, after RFC 5929's MD5/SHA-1 -> SHA-256 rule.
_SIGNATURE_HASHES: Mapping[str, str] = {
    _RSA + "4": "sha256",  # md5WithRSAEncryption
    _RSA + "5": "sha256",  # sha1WithRSAEncryption
    _RSA + "14": "sha224",
    _RSA + "11": "sha256",
    _RSA + "12": "sha384",
    _RSA + "13": "sha512",
    _ECDSA + "1": "sha256",  # ecdsa-with-SHA1
    _ECDSA + "3.1": "sha224",
    _ECDSA + "3.2": "sha256",
    _ECDSA + "3.3": "sha384",
    _ECDSA + "3.4": "sha512",
    "1.2.840.10040.4.3": "sha256",  # dsa-with-sha1
    "2.16.840.1.101.3.4.3.1": "sha224",  # dsa-with-sha224
    "2.16.840.1.101.3.4.3.2": "sha256",  # dsa-with-sha256
}
_RSASSA_PSS = _RSA + "10"
#: Hash algorithm OIDs that may appear inside RSASSA-PSS parameters.
_HASH_OIDS: Mapping[str, str] = {
    "1.3.14.3.2.26": "sha256",  # sha1 -> sha256 (RFC 5929)
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}

_SEQUENCE = 0x30
_OID = 0x06
_CONTEXT_0 = 0xA0


class UnsupportedCertificate(ValueError):
    """The certificate cannot be parsed or its signature algorithm defines no hash."""


def tls_exporter_data(exporter: bytes) -> bytes:
    """Channel-binding data for `tls-exporter`: the exported keying material itself."""
    if len(exporter) != TLS_EXPORTER_LENGTH:
        raise ValueError(f"tls-exporter data must be {TLS_EXPORTER_LENGTH} bytes")
    return exporter


@lru_cache(maxsize=16)
def tls_server_end_point_data(certificate_der: bytes) -> bytes:
    """Channel-binding data for `tls-server-end-point`: hash of the server certificate.

    Cached: a listener has one certificate, and every TLS connection asks (a DER walk in
    Python and a hash of the whole certificate)."""
    return hashlib.new(certificate_signature_hash(certificate_der), certificate_der).digest()


def available_channel_bindings(
    *,
    tls_version: str | None,
    exporter: bytes | None = None,
    certificate_der: bytes | None = None,
) -> dict[str, bytes]:
    """Channel-binding types usable on a connection, in preference order, with their data.

    `tls_version` is what `ssl.SSLObject.version()` returns ("TLSv1.3", ...), None without TLS.
    """
    result: dict[str, bytes] = {}
    if tls_version is None:
        return result
    if exporter is not None and tls_version == "TLSv1.3":
        result[TLS_EXPORTER] = tls_exporter_data(exporter)
    if certificate_der is not None:
        # Not offering the binding is the defined outcome for such certificates (RFC 5929 §4.1).
        with contextlib.suppress(UnsupportedCertificate):
            result[TLS_SERVER_END_POINT] = tls_server_end_point_data(certificate_der)
    return result


def certificate_signature_hash(certificate_der: bytes) -> str:
    """hashlib name of the hash RFC 5929 §4.1 prescribes for this certificate."""
    try:
        cert, rest = _read(certificate_der, 0, _SEQUENCE)
        if rest != len(certificate_der):
            raise UnsupportedCertificate("trailing data after certificate")
        _, pos = _skip(certificate_der, cert[0])  # tbsCertificate
        alg, _ = _read(certificate_der, pos, _SEQUENCE)  # signatureAlgorithm
        oid_span, params_pos = _read(certificate_der, alg[0], _OID)
        oid = _decode_oid(certificate_der[oid_span[0] : oid_span[1]])
        if oid in _SIGNATURE_HASHES:
            return _SIGNATURE_HASHES[oid]
        if oid == _RSASSA_PSS:
            return _pss_hash(certificate_der, params_pos, alg[1])
    except IndexError as exc:
        raise UnsupportedCertificate("truncated DER") from exc
    raise UnsupportedCertificate(f"no channel-binding hash for signature algorithm {oid}")


def _pss_hash(der: bytes, pos: int, end: int) -> str:
    """RSASSA-PSS-params: hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1."""
    if pos >= end:
        return "sha256"
    params, _ = _read(der, pos, _SEQUENCE)
    if params[0] < params[1] and der[params[0]] == _CONTEXT_0:
        inner, _ = _read(der, params[0], _CONTEXT_0)
        hash_alg, _ = _read(der, inner[0], _SEQUENCE)
        oid_span, _ = _read(der, hash_alg[0], _OID)
        oid = _decode_oid(der[oid_span[0] : oid_span[1]])
        if oid not in _HASH_OIDS:
            raise UnsupportedCertificate(f"unknown RSASSA-PSS hash {oid}")
        return _HASH_OIDS[oid]
    return "sha256"  # default hash sha1, replaced by sha256


def _read(der: bytes, pos: int, tag: int) -> tuple[tuple[int, int], int]:
    """Read one TLV with the expected tag; return ((content start, content end), next pos)."""
    if der[pos] != tag:
        raise UnsupportedCertificate(f"expected DER tag {tag:#x} at {pos}")
    return _content(der, pos)


def _skip(der: bytes, pos: int) -> tuple[tuple[int, int], int]:
    return _content(der, pos)


def _content(der: bytes, pos: int) -> tuple[tuple[int, int], int]:
    length = der[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise UnsupportedCertificate("unsupported DER length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise UnsupportedCertificate("truncated DER")
    return (start, end), end


def _decode_oid(body: bytes) -> str:
    if not body:
        raise UnsupportedCertificate("empty OID")
    first = body[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)
