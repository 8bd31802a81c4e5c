"""MongooseIM password records: MULTI_SCRAM round trip, legacy SCRAM, plain, PLAIN checks."""

from __future__ import annotations

import base64
import itertools

import pytest

from meerkat.auth.password import (
    InvalidRecord,
    PlainRecord,
    ScramRecord,
    check_password,
    format_record,
    make_record,
    parse_record,
    record_from_columns,
    scram_credentials,
)
from meerkat.xmpp.sasl.scram import (
    SHA1,
    SHA256,
    ScramClient,
    ScramServer,
    credentials_from_password,
    prepare_password,
    salted_password,
)


def salts() -> object:
    counter = itertools.count()
    return lambda: bytes([next(counter)]) * 16


ALL = ["sha", "sha224", "sha256", "sha384", "sha512"]


def test_multi_scram_record_has_mongooseim_layout() -> None:
    record = make_record("secret", ALL, 64, salts())  # type: ignore[arg-type]
    fields = record.split(",")
    assert fields[:2] == ["==MULTI_SCRAM==", "64"]
    assert [f[:10] for f in fields[2:]] == [
        "===SHA1===",
        "==SHA224==",
        "==SHA256==",
        "==SHA384==",
        "==SHA512==",
    ]
    salt, stored, server = fields[2][10:].split("|")
    expected = credentials_from_password(SHA1, "secret", b"\0" * 16, 64)
    assert base64.b64decode(salt) == b"\0" * 16
    assert base64.b64decode(stored) == expected.stored_key
    assert base64.b64decode(server) == expected.server_key


def test_multi_scram_record_round_trips_through_parse_and_format() -> None:
    text = make_record("secret", ["sha512", "sha"], 64, salts())  # type: ignore[arg-type]
    record = parse_record(text)
    assert isinstance(record, ScramRecord)
    assert set(record.credentials) == {"SHA-1", "SHA-512"}
    assert record.iterations == 64
    assert format_record(record) == text


def test_parsed_record_serves_a_scram_exchange() -> None:
    record = parse_record(make_record("secret", ["SHA-256"], 64, salts()))  # type: ignore[arg-type]
    creds = scram_credentials(record, "sha256", salt_factory=bytes, iterations=1)
    assert creds is not None
    server = ScramServer("SCRAM-SHA-256")
    client = ScramClient("SCRAM-SHA-256", "alice", "cn")
    server.receive_client_first(client.client_first())
    sf = client.receive_server_first(server.server_first(creds, "sn"))
    salted = salted_password(SHA256, prepare_password("secret"), sf.salt, sf.iterations)
    client.receive_server_final(server.receive_client_final(client.client_final(salted)))
    assert scram_credentials(record, "SHA-512", salt_factory=bytes, iterations=1) is None


def test_check_password_accepts_the_right_password_only() -> None:
    record = make_record("s\u00e9cret", ["sha256", "sha512"], 64, salts())  # type: ignore[arg-type]
    assert check_password(record, "s\u00e9cret")
    assert check_password(record, "se\u0301cret")  # same after NFC
    assert not check_password(record, "secret")
    assert not check_password(record, "")


def test_legacy_scram_record_is_read() -> None:
    creds = credentials_from_password(SHA1, "secret", b"legacysalt", 4096)
    b64 = base64.b64encode
    legacy = b",".join(
        [b"==SCRAM==", b64(creds.stored_key), b64(creds.server_key), b64(creds.salt), b"4096"]
    ).decode()
    record = parse_record(legacy)
    assert isinstance(record, ScramRecord)
    assert record.credentials["SHA-1"] == creds
    assert check_password(record, "secret")
    assert not check_password(record, "Secret")


def test_plain_records_check_and_derive_scram_credentials() -> None:
    record = parse_record("secret")
    assert record == PlainRecord("secret")
    assert "secret" not in repr(record)
    assert check_password(record, "secret")
    assert not check_password(record, "secreT")
    assert not check_password(PlainRecord(""), "")
    creds = scram_credentials(record, "SHA-1", salt_factory=lambda: b"s" * 16, iterations=32)
    assert creds == credentials_from_password(SHA1, "secret", b"s" * 16, 32)


def test_columns_decide_the_format_unambiguously() -> None:
    assert record_from_columns("==SCRAM==,a,b,c,1", None) == PlainRecord("==SCRAM==,a,b,c,1")
    scram = make_record("x", ["sha"], 2, salts())  # type: ignore[arg-type]
    assert isinstance(record_from_columns("", scram), ScramRecord)
    with pytest.raises(InvalidRecord):
        record_from_columns("", "not scram")


@pytest.mark.parametrize(
    "text",
    [
        "==MULTI_SCRAM==,64",
        "==MULTI_SCRAM==,0,===SHA1===AA==|AA==|AA==",
        "==MULTI_SCRAM==,x,===SHA1===AA==|AA==|AA==",
        "==MULTI_SCRAM==,64,===SHA9===AA==|AA==|AA==",
        "==MULTI_SCRAM==,64,===SHA1===AA==|AA==",
        "==MULTI_SCRAM==,64,===SHA1===AA==|AA==|AA==",  # wrong key length
        "==MULTI_SCRAM==,64,===SHA1===!!|AA==|AA==",
        "==MULTI_SCRAM==,99999999999999999,===SHA1===AA==|AA==|AA==",
        "==SCRAM==,a,b,c",
        "==SCRAM==,AA==,AA==,AA==,1",
        # base64 is strict: keys of the right length, a salt that is not quite base64
        *(
            f"==MULTI_SCRAM==,64,===SHA1==={salt}|{'A' * 27}=|{'A' * 27}="
            for salt in ("AA==\n", "A A=", "A\u00c5==", "A===", "AA=A", "AA")
        ),
    ],
)
def test_malformed_records_raise_invalid_record(text: str) -> None:
    with pytest.raises(InvalidRecord):
        parse_record(text)


def test_make_record_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        make_record("x", [], 64, salts())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_record("x", ["md5"], 64, salts())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        make_record("", ["sha"], 64, salts())  # type: ignore[arg-type]
