"""How a session takes its input: chunks pushed by the transport (c2s/transport.py).

The transport hands chunks to the session's sink; the session queues them in its mailbox and
pauses reading while `READ_AHEAD` chunks (1 while negotiating or shaped) wait, resuming once
it has acted on them, or once the shaper lets the client send again. The end of the stream
(b"") comes after every chunk delivered before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kernel_harness import wait_for
from test_c2s_harness import BASE_MODULES, C2SHarness, MemoryTransport, Wire, start_harness

from meerkat.c2s.session import READ_AHEAD, SHAPER_BURST
from meerkat.c2s.transport import Sink
from meerkat.core.hooks import USER_SEND_PACKET


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(BASE_MODULES)
    yield h
    await h.stop()


def hold_client_stanzas(harness: C2SHarness) -> asyncio.Event:
    """Keep the sessions busy with the first client stanza until the event is set."""
    release = asyncio.Event()

    async def slow(acc: object, params: dict[str, object]) -> object:
        await release.wait()
        return None

    harness.server.hooks.add(USER_SEND_PACKET, None, slow, 1, owner="test")
    return release


def record_deliveries(wire: Wire) -> list[tuple[int, bool]]:
    """Each chunk's (chunks unprocessed, reading paused) right after the session took it."""
    seen: list[tuple[int, bool]] = []
    transport: MemoryTransport = wire.transport
    start_reading = transport.start_reading

    def recording_start(sink: Sink) -> None:
        def recording(data: bytes) -> None:
            sink(data)
            seen.append((wire.session._unprocessed, transport._paused))

        start_reading(recording)

    transport.start_reading = recording_start  # type: ignore[method-assign]
    return seen


async def test_chunks_are_processed_in_the_order_they_arrive_however_they_are_cut(
    harness: C2SHarness,
) -> None:
    alice = await harness.logged_in("alice")
    data = "".join(
        f"<iq type='get' id='p{i}'><ping xmlns='urn:xmpp:ping'/></iq>" for i in range(20)
    )
    for start in range(0, len(data), 37):
        alice.send(data[start : start + 37])
    ids = [(await alice.expect("iq")).attrs["id"] for _ in range(20)]
    assert ids == [f"p{i}" for i in range(20)]


async def test_a_negotiating_session_pauses_reading_at_each_chunk_until_it_acted_on_it(
    harness: C2SHarness,
) -> None:
    wire = harness.connect()
    seen = record_deliveries(wire)
    await wire.login("alice")
    assert len(seen) >= 4  # header, auth, header, bind
    assert all(seen_item == (1, True) for seen_item in seen)
    assert not wire.transport._paused  # resumed once the last chunk was processed


async def test_the_end_of_the_stream_comes_after_the_chunks_held_before_it(
    harness: C2SHarness,
) -> None:
    bob = await harness.logged_in("bob")
    alice = await harness.logged_in("alice")
    release = hold_client_stanzas(harness)
    for i in range(2):
        alice.send(f"<message to='bob@localhost/res' id='m{i}'><body>{i}</body></message>")
    alice.drop()
    await asyncio.sleep(0.05)
    pending = alice.transport.pending
    assert len(pending) == 2 and pending[-1] == b""  # the second message, then the end
    release.set()
    await alice.ended()
    assert [m.attrs["id"] for m in await bob.stanzas()] == ["m0", "m1"]
    harness.server.hooks.remove_owner("test")


async def test_a_bound_session_reads_a_few_chunks_ahead_and_no_more(harness: C2SHarness) -> None:
    alice = await harness.logged_in("alice")
    release = hold_client_stanzas(harness)
    for i in range(10):
        alice.send(f"<message to='bob@localhost' id='{i}'><body>{i}</body></message>")
    await asyncio.sleep(0.05)
    # READ_AHEAD chunks taken (one of them in processing); the rest wait in the transport.
    assert len(alice.transport.pending) == 10 - READ_AHEAD
    release.set()
    await wait_for(lambda: not alice.transport.pending)
    harness.server.hooks.remove_owner("test")


async def test_a_shaped_client_stays_paused_until_it_is_back_under_its_rate() -> None:
    rate = 1000
    h = await start_harness(BASE_MODULES, shaper_rule="slow")
    h.node.shapers = {"slow": rate}
    try:
        alice = await h.logged_in("alice")
        over = int(rate * (SHAPER_BURST + 1))  # one second past the burst
        alice.send(f"<message to='bob@localhost' id='big'><body>{'x' * over}</body></message>")
        loop = asyncio.get_running_loop()
        sent = loop.time()
        alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        await wait_for(lambda: alice.session._unprocessed == 0)
        assert len(alice.transport.pending) == 1 and alice.transport._paused
        assert (await alice.expect("iq")).attrs["id"] == "p"
        assert loop.time() - sent > 0.5  # about a second: (burst + 1 s) of bytes at the rate
    finally:
        await h.stop()


async def test_an_unshaped_session_resumes_reading_after_each_chunk(harness: C2SHarness) -> None:
    alice = await harness.logged_in("alice")
    transport: Any = alice.transport
    await wait_for(lambda: not transport._paused)  # the bind's chunk: resumed after its answer
    calls: list[str] = []
    pause, resume = transport.pause_reading, transport.resume_reading
    transport.pause_reading = lambda: (calls.append("pause"), pause())
    transport.resume_reading = lambda: (calls.append("resume"), resume())
    alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    await alice.expect("iq")
    await wait_for(lambda: calls == ["pause", "resume"])
