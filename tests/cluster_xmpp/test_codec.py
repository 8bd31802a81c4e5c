"""The wire form of a forwarded stanza (pure: no sockets, no cluster)."""

from __future__ import annotations

import msgpack
import pytest

from meerkat.clustering import decode_element, decode_routed, encode_routed
from meerkat.core.acc import Acc
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid


def sample() -> Acc:
    el = Element("message", "jabber:client", {"to": "bob@localhost/b", "type": "chat"})
    el.add("body", text="héllo <&> 🦦")
    el.add("x", "urn:example", {"{urn:attr}a": "1"}).add("deep", text="y")
    acc = Acc(
        el,
        Jid("alice", "localhost", "a"),
        Jid("bob", "localhost", "b"),
        host_type="localhost",
        timestamp=1_700_000_000.25,
        origin_sid="1.1@node1@localhost",
    )
    acc.scratch.update({"flag": True, "count": 3, "object": object()})
    return acc


def test_a_routed_stanza_survives_msgpack_with_its_addresses_and_plain_scratch() -> None:
    acc = sample()
    wire = msgpack.unpackb(msgpack.packb(encode_routed("9.9@node2@localhost", acc)))
    sid, back = decode_routed(wire)
    assert sid == "9.9@node2@localhost"
    assert back.element == acc.element
    assert (back.from_jid, back.to_jid) == (acc.from_jid, acc.to_jid)
    assert (back.host_type, back.timestamp, back.origin_sid) == (
        "localhost",
        1_700_000_000.25,
        acc.origin_sid,
    )
    assert back.scratch == {"flag": True, "count": 3}  # local objects do not travel


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        ["sid"],
        [
            "sid",
            ["message", "jabber:client", {}, []],
            ["a", "b"],
            ["b", "c", ""],
            "h",
            1.0,
            None,
            {},
        ],
        [
            "sid",
            ["message", "jabber:client", {"a": 1}, []],
            ["a", "b", ""],
            ["b", "c", ""],
            "h",
            1.0,
            None,
            {},
        ],
        [
            "sid",
            ["message", "jabber:client", {}, [7]],
            ["a", "b", ""],
            ["b", "c", ""],
            "h",
            1.0,
            None,
            {},
        ],
        [
            "sid",
            ["message", "jabber:client", {}, []],
            ["a", "b", ""],
            ["b", "c", ""],
            "h",
            "now",
            None,
            {},
        ],
    ],
)
def test_a_malformed_route_payload_is_refused(payload: object) -> None:
    with pytest.raises(ValueError):
        decode_routed(payload)


def test_a_nesting_bomb_is_refused() -> None:
    el: list[object] = ["x", "", {}, []]
    for _ in range(100):
        el = ["x", "", {}, [el]]
    payload = ["sid", el, ["a", "b", ""], ["b", "c", ""], "h", 1.0, None, {}]
    with pytest.raises(ValueError):
        decode_routed(payload)


@pytest.mark.parametrize("attrs", [{1: "x"}, {"a": "x", "b": None}, {b"a": "x"}])
def test_an_element_with_attributes_that_are_not_all_strings_is_refused(
    attrs: dict[object, object],
) -> None:
    with pytest.raises(ValueError, match="attribute"):
        decode_element(["message", "jabber:client", attrs, ["text"]])
