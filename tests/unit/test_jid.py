"""JIDs per RFC 7622: parsing, normalisation and refusal of invalid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import precis_i18n
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meerkat.xmpp.jid import Jid, JidError, enforce_opaque, enforce_username


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


# -- the printable-ASCII shortcut must give exactly what the PRECIS library gives ----------------
_USERNAME = precis_i18n.get_profile("UsernameCaseMapped")
_OPAQUE = precis_i18n.get_profile("OpaqueString")


def _library(profile: Any, text: str) -> str | None:
    try:
        result: str = profile.enforce(text)
    except UnicodeError:
        return None
    return result


def _ours(enforce: Callable[[str], str], text: str) -> str | None:
    try:
        return enforce(text)
    except UnicodeError:
        return None


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_prepared_as_the_precis_library_does(code: int) -> None:
    for text in (chr(code), f"a{chr(code)}B", f"{chr(code)}{chr(code)}"):
        assert _ours(enforce_username, text) == _library(_USERNAME, text)
        assert _ours(enforce_opaque, text) == _library(_OPAQUE, text)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_strings_are_prepared_as_the_precis_library_does(text: str) -> None:
    assert _ours(enforce_username, text) == _library(_USERNAME, text)
    assert _ours(enforce_opaque, text) == _library(_OPAQUE, text)


@given(st.text(alphabet=st.sampled_from("aZ 09_\u00c5\u212b\uff21\u05d0\u0627\u200d\u00a0")))
def test_other_strings_still_go_through_the_precis_library(text: str) -> None:
    assert _ours(enforce_username, text) == _library(_USERNAME, text)
    assert _ours(enforce_opaque, text) == _library(_OPAQUE, text)
