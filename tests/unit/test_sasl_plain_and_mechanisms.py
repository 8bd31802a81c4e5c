"""SASL PLAIN parsing and the mechanism list offered on a connection."""

from __future__ import annotations

import pytest

from meerkat.xmpp.sasl import SaslCondition, SaslFailure
from meerkat.xmpp.sasl.mechanisms import (
    DEFAULT_CONFIG,
    choose_mechanism,
    from_config,
    offered_channel_bindings,
    offered_mechanisms,
)
from meerkat.xmpp.sasl.plain import PlainCredentials, format_plain, parse_plain


def test_plain_without_authzid_parses() -> None:
    assert parse_plain(b"\x00alice\x00secret") == PlainCredentials(None, "alice", "secret")


def test_plain_with_authzid_and_unicode_parses() -> None:
    creds = parse_plain("alice@example.com\x00alice\x00s\u00e9cret".encode())
    assert creds == PlainCredentials("alice@example.com", "alice", "s\u00e9cret")


def test_plain_round_trips_through_format_plain() -> None:
    assert parse_plain(format_plain("bob", "pw", "bob@x")) == PlainCredentials("bob@x", "bob", "pw")


def test_plain_repr_hides_the_password() -> None:
    assert "secret" not in repr(parse_plain(b"\x00alice\x00secret"))


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice",
        b"\x00alice",
        b"\x00\x00secret",
        b"\x00alice\x00",
        b"\x00alice\x00sec\x00ret",
        b"\x00al\xffice\x00secret",
    ],
)
def test_malformed_plain_messages_are_malformed_requests(message: bytes) -> None:
    with pytest.raises(SaslFailure) as info:
        parse_plain(message)
    assert info.value.condition is SaslCondition.MALFORMED_REQUEST


def test_default_config_maps_to_mongooseim_order() -> None:
    names = from_config(DEFAULT_CONFIG)
    assert names[:3] == ["SCRAM-SHA-512-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-384-PLUS"]
    assert names[-3:] == ["PLAIN", "ANONYMOUS", "X-OAUTH"]
    assert from_config(["scram_sha256_plus", "scram_sha1"]) == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1",
    ]


def test_unknown_config_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="scram_md5"):
        from_config(["scram_md5"])


def test_without_tls_neither_plus_nor_plain_is_offered() -> None:
    configured = from_config(["scram_sha256_plus", "scram_sha256", "plain"])
    assert offered_mechanisms(configured, tls=False) == ["SCRAM-SHA-256"]


def test_with_tls_and_bindings_everything_configured_is_offered() -> None:
    configured = from_config(["scram_sha256_plus", "scram_sha256", "plain", "digest"])
    offered = offered_mechanisms(configured, tls=True, channel_bindings=["tls-exporter"])
    assert offered == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"]


def test_scram_hashes_not_stored_are_not_offered() -> None:
    configured = from_config(DEFAULT_CONFIG)
    offered = offered_mechanisms(configured, tls=True, scram_hashes={"SHA-1", "SHA-256"})
    assert offered == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "ANONYMOUS", "X-OAUTH"]


def test_plain_can_be_allowed_without_tls_explicitly() -> None:
    assert offered_mechanisms(["PLAIN"], tls=False, plain_without_tls=True) == ["PLAIN"]


def test_binding_types_are_advertised_in_preference_order() -> None:
    assert offered_channel_bindings(["tls-server-end-point", "tls-unique", "tls-exporter"]) == [
        "tls-exporter",
        "tls-server-end-point",
    ]


def test_client_chooses_its_first_preference_the_server_offers() -> None:
    assert choose_mechanism(["PLAIN", "SCRAM-SHA-1"], ["SCRAM-SHA-256", "SCRAM-SHA-1"]) == (
        "SCRAM-SHA-1"
    )
    assert choose_mechanism(["PLAIN"], ["SCRAM-SHA-1"]) is None
