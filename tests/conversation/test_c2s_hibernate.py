"""Hibernation: an idle session drops its XML parser and goes on as if nothing happened."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import pytest
from test_c2s_harness import C2SHarness, start_harness
from test_c2s_stream_management import SM, bodies, chat, enabled, modules, online

from meerkat.c2s.hibernate import hibernate_forever, sweep


@pytest.fixture
async def harness() -> AsyncIterator[C2SHarness]:
    h = await start_harness(modules(resume_timeout=1))
    yield h
    await h.stop()


async def test_a_session_quiet_for_a_whole_sweep_hibernates_and_still_talks(
    harness: C2SHarness,
) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    assert sweep(harness.node.live) == 0  # both had input since the (first) sweep
    assert sweep(harness.node.live) == 2
    assert alice.session._parser.released and bob.session._parser.released
    alice.send(chat("bob@localhost/res", "one"))  # alice wakes on input
    assert bodies(await bob.stanzas()) == ["one"]  # bob, still asleep, gets it at once
    assert bob.session._parser.released and not alice.session._parser.released
    bob.send(chat("alice@localhost/res", "two"))
    assert bodies(await alice.stanzas()) == ["two"]


async def test_a_session_with_half_a_stanza_does_not_hibernate(harness: C2SHarness) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    alice.send("<message to='bob@localhost/res' type='chat'><body>sp")
    await asyncio.sleep(0.05)
    sweep(harness.node.live)
    sweep(harness.node.live)
    assert not alice.session._parser.released
    alice.send("lit</body></message>")
    assert bodies(await bob.stanzas()) == ["split"]


async def test_stream_management_counts_exactly_across_hibernation(harness: C2SHarness) -> None:
    alice = await online(harness, "alice")
    bob = await online(harness, "bob")
    await enabled(alice)
    alice.send(chat("bob@localhost/res", "one"))
    assert bodies(await bob.stanzas()) == ["one"]
    for _ in range(2):
        sweep(harness.node.live)
    assert alice.session._parser.released
    bob.send(chat("alice@localhost/res", "two"))  # delivered to the sleeping session
    got = await alice.elements()
    assert bodies(got) == ["two"]
    assert alice.session._parser.released  # output needed no parser
    alice.send(f"<r {SM}/>")
    assert (await alice.expect("a")).attrs["h"] == "1"  # the enable is no stanza; "one" is
    alice.send(f"<a {SM} h='1'/>")
    sm = alice.session.state("mod_stream_management")["sm"]
    await asyncio.sleep(0.05)
    assert sm.pending == 0


async def test_the_node_sweeps_on_its_own() -> None:
    class Quiet:
        def __init__(self) -> None:
            self.ticks = 0

        def idle_tick(self) -> bool:
            self.ticks += 1
            return self.ticks == 2

    sessions = {Quiet(), Quiet()}
    task = asyncio.get_running_loop().create_task(hibernate_forever(sessions, period=0.01))
    try:
        for _ in range(100):
            if all(s.ticks >= 3 for s in sessions):
                break
            await asyncio.sleep(0.01)
        assert all(s.ticks >= 3 for s in sessions)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_heap_is_trimmed_after_releases_and_not_more_often_than_asked() -> None:
    class Sleepy:
        def __init__(self, sleeps: bool) -> None:
            self.sleeps = sleeps

        def idle_tick(self) -> bool:
            return self.sleeps

    for sleeps, expected in ((True, range(2, 6)), (False, range(0, 1))):
        trims: list[object] = []
        task = asyncio.get_running_loop().create_task(
            hibernate_forever(
                {Sleepy(sleeps)},
                period=0.005,
                trim_every=0.05,
                trim=functools.partial(trims.append, 1),
            )
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(trims) in expected
