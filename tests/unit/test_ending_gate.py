"""EndingGate: at most `limit` sessions end at once, the others in arrival order."""

from __future__ import annotations

import asyncio

import pytest

from meerkat.c2s.ending import EndingGate


async def test_at_most_the_limit_end_at_once_and_the_rest_in_arrival_order() -> None:
    gate = EndingGate(3)
    running, most, order = 0, 0, []
    release = asyncio.Event()

    async def end(i: int) -> None:
        nonlocal running, most
        async with gate:
            running += 1
            most = max(most, running)
            order.append(i)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(end(i)) for i in range(10)]
    await asyncio.sleep(0.01)
    assert (order, gate.statistics()) == ([0, 1, 2], {"ending": 3, "waiting": 7})
    release.set()
    await asyncio.gather(*tasks)
    assert most == 3 and order == list(range(10))
    assert gate.statistics() == {"ending": 0, "waiting": 0}


async def test_a_session_cancelled_while_waiting_or_just_let_in_keeps_no_place() -> None:
    gate = EndingGate(1)
    await gate.__aenter__()  # this test holds the only place
    waiting = asyncio.create_task(gate.__aenter__())
    let_in = asyncio.create_task(gate.__aenter__())
    await asyncio.sleep(0)
    waiting.cancel()  # gives up while waiting
    await asyncio.sleep(0)
    await gate.__aexit__(None, None, None)  # hands the place to `let_in` (no loop turn)...
    let_in.cancel()  # ...which is cancelled before it runs: the place must come back
    with pytest.raises(asyncio.CancelledError):
        await let_in
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.statistics() == {"ending": 0, "waiting": 0}
    async with asyncio.timeout(1):
        async with gate:
            pass
