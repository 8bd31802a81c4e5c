"""SCRAM server and client: RFC test vectors, round trips, every failure path."""

from __future__ import annotations

import base64

import pytest

from meerkat.xmpp.sasl import SaslCondition, SaslFailure
from meerkat.xmpp.sasl.channel_binding import TLS_EXPORTER, TLS_SERVER_END_POINT
from meerkat.xmpp.sasl.scram import (
    HASHES,
    SHA1,
    SHA256,
    ScramClient,
    ScramCredentials,
    ScramServer,
    ScramServerState,
    credentials_from_password,
    mock_credentials,
    parse_mechanism,
    prepare_password,
    salted_password,
)

SALT = b"0123456789abcdef"
BINDINGS = {TLS_EXPORTER: b"E" * 32, TLS_SERVER_END_POINT: b"S" * 32}


def creds(h: str = "SHA-256", password: str = "pencil", iterations: int = 64) -> ScramCredentials:
    return credentials_from_password(HASHES[h], password, SALT, iterations)


def run_exchange(
    mechanism: str,
    *,
    password: str = "pencil",
    client_bindings: tuple[str, bytes] | None = None,
    server_bindings: dict[str, bytes] | None = None,
    username: str = "user",
    authzid: str | None = None,
) -> tuple[ScramServer, ScramClient]:
    h, _ = parse_mechanism(mechanism)
    server = ScramServer(mechanism, channel_bindings=server_bindings)
    client = ScramClient(
        mechanism, username, "clientnonce", authzid=authzid, channel_binding=client_bindings
    )
    first = server.receive_client_first(client.client_first())
    challenge = server.server_first(creds(h.name), "servernonce")
    sf = client.receive_server_first(challenge)
    assert (sf.salt, sf.iterations) == (SALT, 64)
    assert first.username == username
    response = client.client_final(salted_password(h, prepare_password(password), SALT, 64))
    client.receive_server_final(server.receive_client_final(response))
    return server, client


def test_rfc5802_scram_sha1_vector_is_reproduced_exactly() -> None:
    salt = base64.b64decode("QSXCR+Q6sek8bf92")
    server = ScramServer("SCRAM-SHA-1")
    server.receive_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    challenge = server.server_first(
        credentials_from_password(SHA1, "pencil", salt, 4096), "3rfcNHYJY1ZVvWVs7j"
    )
    assert challenge == b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    final = server.receive_client_final(
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    assert final == b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
    assert server.state is ScramServerState.SUCCESS
    assert server.result is not None and server.result.authcid == "user"


def test_rfc5802_client_side_produces_the_vector_proof() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "fyko+d2lbbFgONRv9qkxdawL")
    assert client.client_first() == b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    sf = client.receive_server_first(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    salted = salted_password(SHA1, b"pencil", sf.salt, sf.iterations)
    assert client.client_final(salted) == (
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    client.receive_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")


def test_rfc7677_scram_sha256_vector_is_reproduced_exactly() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    server = ScramServer("SCRAM-SHA-256")
    server.receive_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    challenge = server.server_first(
        credentials_from_password(SHA256, "pencil", salt, 4096),
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    )
    assert challenge == (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = server.receive_client_final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


@pytest.mark.parametrize("hash_name", list(HASHES))
def test_round_trip_succeeds_for_every_hash_without_binding(hash_name: str) -> None:
    server, _ = run_exchange(f"SCRAM-{hash_name}")
    assert server.result is not None and server.result.channel_binding is None


@pytest.mark.parametrize("hash_name", list(HASHES))
@pytest.mark.parametrize("cb_type", [TLS_EXPORTER, TLS_SERVER_END_POINT])
def test_round_trip_succeeds_for_every_hash_and_binding_type(hash_name: str, cb_type: str) -> None:
    server, _ = run_exchange(
        f"SCRAM-{hash_name}-PLUS",
        client_bindings=(cb_type, BINDINGS[cb_type]),
        server_bindings=BINDINGS,
    )
    assert server.result is not None and server.result.channel_binding == cb_type


def test_usernames_and_authzids_with_commas_and_equals_are_escaped_and_restored() -> None:
    server, _ = run_exchange("SCRAM-SHA-1", username="a,b=c", authzid="x=y,z@example.com")
    assert server.result is not None
    assert (server.result.authcid, server.result.authzid) == ("a,b=c", "x=y,z@example.com")


def test_wrong_password_fails_with_not_authorized() -> None:
    with pytest.raises(SaslFailure) as info:
        run_exchange("SCRAM-SHA-256", password="wrong")
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_mock_credentials_fail_like_a_wrong_password_and_are_stable() -> None:
    first = mock_credentials(SHA256, "ghost", b"k", 4096)
    assert first == mock_credentials(SHA256, "ghost", b"k", 4096)
    server = ScramServer("SCRAM-SHA-256")
    client = ScramClient("SCRAM-SHA-256", "ghost", "cn")
    server.receive_client_first(client.client_first())
    sf = client.receive_server_first(server.server_first(first, "sn"))
    with pytest.raises(SaslFailure) as info:
        server.receive_client_final(
            client.client_final(salted_password(SHA256, b"x", sf.salt, sf.iterations))
        )
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_binding_data_mismatch_fails_with_not_authorized() -> None:
    with pytest.raises(SaslFailure) as info:
        run_exchange(
            "SCRAM-SHA-256-PLUS",
            client_bindings=(TLS_EXPORTER, b"X" * 32),
            server_bindings=BINDINGS,
        )
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def start(mechanism: str, message: bytes, **kwargs: object) -> SaslFailure:
    server = ScramServer(mechanism, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SaslFailure) as info:
        server.receive_client_first(message)
    assert server.state is ScramServerState.FAILED
    return info.value


def test_client_sending_y_when_plus_was_advertised_is_a_downgrade() -> None:
    failure = start("SCRAM-SHA-256", b"y,,n=user,r=abc", channel_bindings=BINDINGS)
    assert failure.condition is SaslCondition.NOT_AUTHORIZED


def test_client_sending_y_without_plus_advertised_is_accepted() -> None:
    server = ScramServer("SCRAM-SHA-256")
    assert server.receive_client_first(b"y,,n=user,r=abc").cb_flag == "y"


def test_plus_mechanism_without_p_flag_is_malformed() -> None:
    failure = start("SCRAM-SHA-256-PLUS", b"n,,n=user,r=abc", channel_bindings=BINDINGS)
    assert failure.condition is SaslCondition.MALFORMED_REQUEST


def test_plus_mechanism_with_unavailable_binding_type_fails() -> None:
    failure = start(
        "SCRAM-SHA-256-PLUS",
        b"p=tls-unique,,n=user,r=abc",
        channel_bindings={TLS_SERVER_END_POINT: b"x"},
    )
    assert failure.condition is SaslCondition.MALFORMED_REQUEST


def test_p_flag_with_a_non_plus_mechanism_is_malformed() -> None:
    failure = start("SCRAM-SHA-1", b"p=tls-exporter,,n=user,r=abc", channel_bindings=BINDINGS)
    assert failure.condition is SaslCondition.MALFORMED_REQUEST


def test_plus_mechanism_on_a_connection_without_bindings_is_an_invalid_mechanism() -> None:
    with pytest.raises(SaslFailure) as info:
        ScramServer("SCRAM-SHA-1-PLUS")
    assert info.value.condition is SaslCondition.INVALID_MECHANISM


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-MD5", "SCRAM-SHA-256-PLUSX", "SCRAM-"])
def test_unknown_mechanisms_are_rejected(mechanism: str) -> None:
    with pytest.raises(SaslFailure) as info:
        ScramServer(mechanism)
    assert info.value.condition is SaslCondition.INVALID_MECHANISM


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n,,n=user",
        b"x,,n=user,r=abc",
        b"p=,,n=user,r=abc",
        b"p=tls exporter,,n=user,r=abc",
        b"n,b=x,n=user,r=abc",
        b"n,a=,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=us=er,r=abc",
        b"n,,n=us=2Xer,r=abc",
        b"n,,u=user,r=abc",
        b"n,,n=user,x=abc",
        b"n,,n=user,r=",
        b"n,,n=user,r=a\x7fb",
        b"n,,n=user,r=abc,m=mandatory",
        b"n,,n=user,r=abc,bad",
        b"n,,n=user,r=abc,",
        b"n,,n=\xff,r=abc",
        b"n,,n=us\x00er,r=abc",
    ],
)
def test_malformed_client_first_messages_are_rejected(message: bytes) -> None:
    assert start("SCRAM-SHA-1", message).condition is SaslCondition.MALFORMED_REQUEST


def test_optional_extensions_after_the_nonce_are_ignored() -> None:
    first = ScramServer("SCRAM-SHA-1").receive_client_first(b"n,,n=user,r=abc,x=1")
    assert first.nonce == "abc" and first.bare == b"n=user,r=abc,x=1"


def test_lowercase_escapes_are_accepted() -> None:
    first = ScramServer("SCRAM-SHA-1").receive_client_first(b"n,,n=a=2cb=3dc,r=abc")
    assert first.username == "a,b=c"


def prepared_server() -> ScramServer:
    server = ScramServer("SCRAM-SHA-1")
    server.receive_client_first(b"n,,n=user,r=cn")
    server.server_first(creds("SHA-1"), "sn")
    return server


PROOF = base64.b64encode(b"\0" * 20).decode()


@pytest.mark.parametrize(
    ("message", "condition"),
    [
        (b"", SaslCondition.MALFORMED_REQUEST),
        (b"c=biws,r=cnsn", SaslCondition.MALFORMED_REQUEST),
        (f"c=biws,p={PROOF},r=cnsn".encode(), SaslCondition.MALFORMED_REQUEST),
        (f"c=b!ws,r=cnsn,p={PROOF}".encode(), SaslCondition.MALFORMED_REQUEST),
        (b"c=biws,r=cnsn,p=AAA", SaslCondition.MALFORMED_REQUEST),
        (f"c=biws,r=cnsn,m=x,p={PROOF}".encode(), SaslCondition.MALFORMED_REQUEST),
        (f"x=biws,r=cnsn,p={PROOF}".encode(), SaslCondition.MALFORMED_REQUEST),
        (f"c=eSws,r=cnsn,p={PROOF}".encode(), SaslCondition.NOT_AUTHORIZED),  # y,, not n,,
        (f"c=biws,r=cnXX,p={PROOF}".encode(), SaslCondition.NOT_AUTHORIZED),
        (f"c=biws,r=cn,p={PROOF}".encode(), SaslCondition.NOT_AUTHORIZED),
        (b"c=biws,r=cnsn,p=AAAA", SaslCondition.NOT_AUTHORIZED),
        (f"c=biws,r=cnsn,p={PROOF}".encode(), SaslCondition.NOT_AUTHORIZED),
    ],
)
def test_bad_client_final_messages_fail_with_the_right_condition(
    message: bytes, condition: SaslCondition
) -> None:
    server = prepared_server()
    with pytest.raises(SaslFailure) as info:
        server.receive_client_final(message)
    assert info.value.condition is condition
    assert server.state is ScramServerState.FAILED


def test_messages_out_of_order_are_rejected_and_kill_the_exchange() -> None:
    server = ScramServer("SCRAM-SHA-1")
    with pytest.raises(SaslFailure):
        server.receive_client_final(b"c=biws,r=x,p=AAAA")
    with pytest.raises(SaslFailure):
        server.receive_client_first(b"n,,n=user,r=abc")


def test_server_first_before_client_first_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        ScramServer("SCRAM-SHA-1").server_first(creds("SHA-1"), "sn")


def test_server_nonce_with_a_comma_is_refused() -> None:
    server = ScramServer("SCRAM-SHA-1")
    server.receive_client_first(b"n,,n=user,r=abc")
    with pytest.raises(ValueError):
        server.server_first(creds("SHA-1"), "a,b")


def test_client_rejects_a_server_nonce_that_does_not_extend_its_own() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "cn")
    client.client_first()
    with pytest.raises(SaslFailure):
        client.receive_server_first(b"r=other,s=QSXCR+Q6sek8bf92,i=4096")


def test_client_rejects_a_forged_server_signature() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "cn")
    client.client_first()
    client.receive_server_first(b"r=cnsn,s=QSXCR+Q6sek8bf92,i=1")
    client.client_final(b"\0" * 20)
    with pytest.raises(SaslFailure):
        client.receive_server_final(b"v=" + base64.b64encode(b"\1" * 20))


def test_client_reports_a_server_error_attribute_as_not_authorized() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "cn")
    client.client_first()
    client.receive_server_first(b"r=cnsn,s=QSXCR+Q6sek8bf92,i=1")
    client.client_final(b"\0" * 20)
    with pytest.raises(SaslFailure) as info:
        client.receive_server_final(b"e=invalid-proof")
    assert info.value.condition is SaslCondition.NOT_AUTHORIZED


def test_client_sends_y_when_it_supports_binding_but_none_was_offered() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "cn", supports_binding=True)
    assert client.client_first().startswith(b"y,,")


def test_client_plus_mechanism_requires_binding_data() -> None:
    with pytest.raises(ValueError):
        ScramClient("SCRAM-SHA-1-PLUS", "user", "cn")


def test_prepare_password_applies_precis_opaque_string() -> None:
    assert prepare_password("p\u00a0w") == b"p w"  # non-ASCII space mapped to U+0020
    assert prepare_password("e\u0301") == "\u00e9".encode()  # NFC
    with pytest.raises(ValueError):
        prepare_password("")
    with pytest.raises(ValueError):
        prepare_password("a\x07b")
