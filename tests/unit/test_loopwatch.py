"""LoopMonitor: a callback that keeps the event loop busy is noticed and logged."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from meerkat.core import LoopMonitor


async def test_a_stalled_loop_is_logged_with_its_length_and_cpu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="meerkat.core.loopwatch")
    monitor = LoopMonitor("n1")
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.15)
    assert monitor.statistics()["stalls"] == 0
    end = time.thread_time() + 0.3
    while time.thread_time() < end:  # a turn that burns 300 ms of CPU, however loaded the machine
        pass
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = monitor.statistics()
    assert stats["stalls"] == 1
    assert 200 <= stats["longest_ms"] < 10_000 and stats["longest_cpu_ms"] >= 200
    [record] = [r for r in caplog.records if r.getMessage().startswith("event_loop_stalled")]
    assert record.levelno == logging.INFO and "node=n1" in record.getMessage()
