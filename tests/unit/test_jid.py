"""JIDs per RFC 7622: parsing, normalisation and refusal of invalid ones."""

from __future__ import annotations

import pytest

from meerkat.xmpp.jid import Jid, JidError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice@localhost", Jid("alice", "localhost")),
        ("ALICE@LocalHost/Phone", Jid("alice", "localhost", "Phone")),
        ("localhost", Jid("", "localhost")),
        ("localhost/res", Jid("", "localhost", "res")),
        ("a@b/c/d@e", Jid("a", "b", "c/d@e")),
        ("juliet@example.com/ foo", Jid("juliet", "example.com", " foo")),
        ("ÄLICE@EXAMPLE.com", Jid("älice", "example.com")),
        ("example.com.", Jid("", "example.com")),
    ],
)
def test_valid_jids_are_normalised(text: str, expected: Jid) -> None:
    assert Jid.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@localhost",
        "alice@",
        "alice@localhost/",
        "a b@localhost",
        "a@b@c",
        "a@[bad",
        "x" * 1024 + "@localhost",
        "alice@local host",
        "\u0000@localhost",
    ],
)
def test_invalid_jids_are_refused(text: str) -> None:
    with pytest.raises(JidError):
        Jid.parse(text)


def test_localpart_comparison_is_case_insensitive_and_resource_is_not() -> None:
    assert Jid.parse("Alice@localhost") == Jid.parse("alice@LOCALHOST")
    assert Jid.parse("alice@localhost/R") != Jid.parse("alice@localhost/r")


def test_bare_and_string_forms() -> None:
    jid = Jid.parse("alice@localhost/phone")
    assert jid.bare == Jid("alice", "localhost")
    assert str(jid) == "alice@localhost/phone"
    assert jid.bare_str == "alice@localhost"
    assert jid.is_full and jid.bare.is_bare
