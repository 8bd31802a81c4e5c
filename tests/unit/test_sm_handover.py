"""The plain-data form of a resumable session (XEP-0198 resumption on another node)."""

from __future__ import annotations

import msgpack
import pytest

from meerkat.modules.stream_management.buffer import SmState
from meerkat.modules.stream_management.handover import (
    Unpackable,
    pack_session,
    pack_value,
    unpack_session,
    unpack_value,
)
from meerkat.modules.stream_management.remote import with_delay
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid

JID = Jid("alice", "localhost", "phone")


def message(body: str) -> Element:
    el = Element("message", ns.CLIENT, {"to": str(JID), "type": "chat"})
    el.add("body", text=body)
    return el


def buffered_state() -> SmState:
    sm = SmState(buffer_max=None, smid="id-1")
    sm.handled = 7
    for i, body in enumerate(("one", "two", "three")):
        sm.count_out(message(body), now=1000.0 + i)
    sm.ack(1)
    return sm


def test_a_session_survives_msgpack_with_its_counters_buffer_and_module_state() -> None:
    sm = buffered_state()
    held = Element("presence", ns.CLIENT, {"from": "bob@localhost/b"})
    mod_state = {
        "mod_stream_management": {"sm": sm},
        "mod_carboncopy": {"enabled": True},
        "mod_csi": {"inactive": True, "seq": 3, "held": {("presence", "bob@localhost/b"): held}},
        "mod_presence": {"directed": {Jid("room", "muc.localhost", "nick")}},
    }
    info = {"ip": "127.0.0.1", "port": 5, "presence": "<presence/>", "odd": object()}
    packed = pack_session(JID, 5, info, sm, mod_state, "mod_stream_management")
    wire = msgpack.unpackb(msgpack.packb(packed), strict_map_key=False)
    state = unpack_session(wire)
    assert state.jid == JID and state.priority == 5
    assert state.info == {"ip": "127.0.0.1", "port": 5, "presence": "<presence/>"}
    assert (state.handled, state.sent, state.acked) == (7, 3, 1)
    assert [(el.find_text("body"), stamp) for el, stamp in state.buffer] == [
        ("two", 1001.0),
        ("three", 1002.0),
    ]
    assert "mod_stream_management" not in state.mod_state
    assert state.mod_state["mod_carboncopy"] == {"enabled": True}
    csi = state.mod_state["mod_csi"]
    assert csi["inactive"] is True and csi["seq"] == 3
    [(key, el)] = csi["held"].items()
    assert key == ("presence", "bob@localhost/b") and str(el) == str(held)
    assert state.mod_state["mod_presence"] == {"directed": {Jid("room", "muc.localhost", "nick")}}


def test_a_value_with_no_plain_form_is_left_behind() -> None:
    sm = SmState()
    packed = pack_session(JID, None, {}, sm, {"mod_x": {"live": object(), "ok": 1}}, "sm")
    assert unpack_session(packed).mod_state == {"mod_x": {"ok": 1}}
    with pytest.raises(Unpackable):
        pack_value(object())


@pytest.mark.parametrize(
    "data",
    [None, {"v": 2}, {"v": 1, "jid": "alice@localhost"}, {"v": 1, "h": "x"}, [1, 2]],
)
def test_anything_but_a_packed_session_is_refused(data: object) -> None:
    with pytest.raises(Unpackable):
        unpack_session(data)


def test_tagged_values_round_trip() -> None:
    value = [{1: (Jid("a", "b"), "x")}, {"s"}, None, 1.5]
    assert unpack_value(pack_value(value)) == value
    with pytest.raises(Unpackable):
        unpack_value({"$nope": 1})


def test_the_buffer_keeps_first_stamps_and_sequence_numbers() -> None:
    sm = buffered_state()
    assert sm.first_seq == 1 and sm.out_seq == 3
    assert [el.find_text("body") for el in sm.ack(2)] == ["two"]
    taken = sm.take_unacked_stamped()
    assert [(el.find_text("body"), stamp) for el, stamp in taken] == [("three", 1002.0)]
    assert sm.first_seq == 3 and sm.sent == 2
    copy = Element("message", ns.CLIENT)
    sm.restamp[id(copy)] = 1002.0
    sm.count_out(copy, now=2000.0)
    assert list(sm.stamps) == [1002.0] and not sm.restamp


def test_only_messages_and_presence_get_a_delay_and_only_once() -> None:
    msg = with_delay(message("hi"), "localhost", 0.0)
    delay = msg.find("delay", ns.DELAY)
    assert delay is not None and delay.attrs == {
        "from": "localhost",
        "stamp": "1970-01-01T00:00:00.000000Z",
    }
    assert with_delay(msg, "localhost", 5.0) is msg
    other = with_delay(msg, "elsewhere.example", 5.0)
    assert len([d for d in other.elements() if d.name == "delay"]) == 2
    iq = Element("iq", ns.CLIENT, {"type": "get"})
    assert with_delay(iq, "localhost", 0.0) is iq
    assert with_delay(Element("presence", ns.CLIENT), "localhost", 0.0).find("delay", ns.DELAY)
