"""Channel-binding data: tls-server-end-point hash choice (RFC 5929) and tls-exporter rules."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from meerkat.xmpp.sasl.channel_binding import (
    TLS_EXPORTER,
    TLS_SERVER_END_POINT,
    UnsupportedCertificate,
    available_channel_bindings,
    certificate_signature_hash,
    tls_exporter_data,
    tls_server_end_point_data,
)

_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def make_cert(key: object, algorithm: hashes.HashAlgorithm | None, **sign: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    cert = builder.sign(key, algorithm, **sign)  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("key", "algorithm", "expected"),
    [
        (_RSA_KEY, hashes.SHA256(), "sha256"),
        (_RSA_KEY, hashes.SHA384(), "sha384"),
        (_RSA_KEY, hashes.SHA512(), "sha512"),
        (_RSA_KEY, hashes.SHA224(), "sha224"),
        (_EC_KEY, hashes.SHA256(), "sha256"),
        (_EC_KEY, hashes.SHA384(), "sha384"),
        (_EC_KEY, hashes.SHA512(), "sha512"),
    ],
)
def test_server_end_point_uses_the_certificate_signature_hash(
    key: object, algorithm: hashes.HashAlgorithm, expected: str
) -> None:
    der = make_cert(key, algorithm)
    assert certificate_signature_hash(der) == expected
    assert tls_server_end_point_data(der) == hashlib.new(expected, der).digest()


SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")


@pytest.mark.parametrize("last_arc", [4, 5])  # md5WithRSA, sha1WithRSA
def test_server_end_point_replaces_md5_and_sha1_by_sha256(last_arc: int) -> None:
    # cryptography refuses to sign with MD5/SHA-1, so relabel a SHA-384 certificate's OIDs.
    der = make_cert(_RSA_KEY, hashes.SHA384())
    sha384_oid = SHA256_RSA_OID[:-1] + bytes([12])
    assert der.count(sha384_oid) == 2
    der = der.replace(sha384_oid, SHA256_RSA_OID[:-1] + bytes([last_arc]))
    assert tls_server_end_point_data(der) == hashlib.sha256(der).digest()


def test_server_end_point_reads_the_hash_from_rsassa_pss_parameters() -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32)
    der = make_cert(_RSA_KEY, hashes.SHA384(), rsa_padding=pss)
    assert certificate_signature_hash(der) == "sha384"


def test_ed25519_certificates_have_no_server_end_point_binding() -> None:
    der = make_cert(ed25519.Ed25519PrivateKey.generate(), None)
    with pytest.raises(UnsupportedCertificate):
        certificate_signature_hash(der)
    assert available_channel_bindings(tls_version="TLSv1.3", certificate_der=der) == {}


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x05\x30", b"\x04\x00", b"\x30\x80"])
def test_garbage_certificates_raise_unsupported_certificate(der: bytes) -> None:
    with pytest.raises(UnsupportedCertificate):
        certificate_signature_hash(der)


def test_tls_exporter_is_only_offered_on_tls_1_3() -> None:
    exporter = bytes(range(32))
    der = make_cert(_RSA_KEY, hashes.SHA256())
    both = available_channel_bindings(tls_version="TLSv1.3", exporter=exporter, certificate_der=der)
    assert list(both) == [TLS_EXPORTER, TLS_SERVER_END_POINT]
    assert both[TLS_EXPORTER] == exporter
    tls12 = available_channel_bindings(
        tls_version="TLSv1.2", exporter=exporter, certificate_der=der
    )
    assert list(tls12) == [TLS_SERVER_END_POINT]
    assert available_channel_bindings(tls_version=None, exporter=exporter) == {}


def test_tls_exporter_data_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        tls_exporter_data(b"short")
