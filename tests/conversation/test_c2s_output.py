"""What a c2s session writes and how: pre-auth features built once per kind of connection,
and the output of consecutive mailbox items written as one chunk (one TLS record, one send)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_c2s_harness import BASE_MODULES, HEADER, C2SHarness, start_harness

from meerkat.core.acc import Acc
from meerkat.core.hooks import SASL2_STREAM_FEATURES
from meerkat.xmpp import ns
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(BASE_MODULES)
    yield h
    await h.stop()


async def test_pre_auth_features_are_built_once_per_kind_of_connection(
    harness: C2SHarness,
) -> None:
    built: list[int] = []

    async def counting(acc: list[Element], params: dict[str, object]) -> object:
        built.append(1)
        acc.append(Element("counted", "urn:example:count"))
        return None

    hooks = harness.server.hooks
    hooks.add(SASL2_STREAM_FEATURES, None, counting, 50, owner="test")
    first = await harness.connect().open()
    second = await harness.connect().open()
    assert built == [1]
    assert first == second
    assert first.find("authentication", ns.SASL2) is not None

    hooks.remove_owner("test")  # a changed set of handlers is seen at once
    third = await harness.connect().open()
    assert built == [1]
    assert "urn:example:count" not in str(third)


def record_writes(transport: Any) -> list[bytes]:
    """Wrap `transport.write` so each call's bytes are also appended to the returned list."""
    writes: list[bytes] = []
    write = transport.write

    def recording(data: bytes) -> None:
        writes.append(data)
        write(data)

    transport.write = recording
    return writes


async def test_stanzas_queued_together_are_written_in_one_chunk(harness: C2SHarness) -> None:
    bob = await harness.logged_in("bob")
    await bob.elements()
    writes = record_writes(bob.transport)
    alice = Jid("alice", "localhost", "res")
    for i in range(5):
        msg = Element("message", ns.CLIENT, {"from": str(alice), "to": bob.jid, "id": str(i)})
        msg.add("body", text=f"m{i}")
        acc = Acc(msg, alice, bob.session.jid, host_type="localhost", timestamp=0.0)
        assert bob.session.deliver(acc)
    got = [el for el in await bob.elements() if el.name == "message"]
    assert [el.attrs["id"] for el in got] == ["0", "1", "2", "3", "4"]
    assert len(writes) == 1


async def test_a_stream_header_and_its_features_are_one_write(harness: C2SHarness) -> None:
    wire = harness.connect()
    writes = record_writes(wire.transport)
    wire.send(HEADER)
    await wire.expect("features")
    assert len(writes) == 1
    assert writes[0].startswith(b"<?xml") and writes[0].endswith(b"</stream:features>")


async def test_a_stalled_negotiation_ends_with_connection_timeout() -> None:
    h = await start_harness(BASE_MODULES, state_timeout=0.2)
    try:
        wire = h.connect()
        await wire.open()
        error = await wire.stream_error()
        assert error.find("connection-timeout", ns.STREAMS_ERRORS) is not None
        await wire.ended()
    finally:
        await h.stop()


async def test_each_negotiation_state_has_its_own_clock_and_a_bound_session_none() -> None:
    h = await start_harness(BASE_MODULES, state_timeout=0.3)
    try:
        wire = h.connect()
        await asyncio.sleep(0.2)  # most of the first state's time
        await wire.login("alice")  # new states, each with a fresh 0.3 s
        await asyncio.sleep(0.4)  # past every earlier deadline: stale timers do nothing
        assert not wire.task.done()
        wire.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        assert (await wire.expect("iq")).attrs["id"] == "p"
    finally:
        await h.stop()
