"""Hypothesis fuzzing: SASL parsers and state machines raise nothing but SaslFailure."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from meerkat.xmpp.sasl import SaslFailure
from meerkat.xmpp.sasl.plain import parse_plain
from meerkat.xmpp.sasl.scram import SHA1, ScramServer, credentials_from_password
from meerkat.xmpp.sasl.scram.messages import (
    parse_client_final,
    parse_client_first,
    parse_server_final,
    parse_server_first,
)

CREDS = credentials_from_password(SHA1, "pencil", b"salt", 2)
# Bytes biased towards SCRAM syntax so the fuzzer reaches deep branches.
ALPHABET = [*b"nyapmrcsivex=,-.0123456789ABCD+/=", 0, 0xFF, 0x7F, 0xC3]
scramish = st.lists(st.sampled_from(ALPHABET), max_size=60).map(bytes) | st.binary(max_size=80)
prefixed = st.tuples(
    st.sampled_from([b"n,,n=", b"y,,n=", b"p=tls-exporter,,n=", b"n,a=", b"c=biws,r=", b"r="]),
    scramish,
).map(lambda t: t[0] + t[1])
messages = scramish | prefixed


def only_sasl_failure(func: object, data: bytes) -> None:
    with contextlib.suppress(SaslFailure):
        func(data)  # type: ignore[operator]


@settings(max_examples=400)
@given(messages)
def test_every_scram_parser_raises_only_sasl_failure(data: bytes) -> None:
    for parser in (parse_client_first, parse_client_final, parse_server_first, parse_server_final):
        only_sasl_failure(parser, data)


@settings(max_examples=300)
@given(messages)
def test_plain_parser_raises_only_sasl_failure(data: bytes) -> None:
    only_sasl_failure(parse_plain, data)


@settings(max_examples=300)
@given(messages, messages)
def test_server_state_machine_raises_only_sasl_failure(first: bytes, final: bytes) -> None:
    server = ScramServer("SCRAM-SHA-1-PLUS", channel_bindings={"tls-exporter": b"x" * 32})
    try:
        server.receive_client_first(first)
        server.server_first(CREDS, "servernonce")
        server.receive_client_final(final)
    except SaslFailure:
        pass
    plain = ScramServer("SCRAM-SHA-1")
    try:
        plain.receive_client_first(b"n,,n=user,r=abc")
        plain.server_first(CREDS, "sn")
        plain.receive_client_final(b"c=biws,r=abcsn," + final)
    except SaslFailure:
        pass
