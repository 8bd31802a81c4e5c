"""HookRegistry: order, STOP, and the merged chains it caches between changes."""

from __future__ import annotations

from typing import Any

from meerkat.core.hooks import STOP, USER_SEND_PACKET, HookRegistry


def recorder(log: list[str], name: str, result: object = None) -> Any:
    async def handler(acc: object, params: dict[str, Any]) -> object:
        log.append(name)
        return result

    return handler


async def test_host_and_global_handlers_run_in_priority_order() -> None:
    hooks = HookRegistry(reraise=True)
    log: list[str] = []
    hooks.add(USER_SEND_PACKET, "a.example", recorder(log, "host 50"), 50, "m1")
    hooks.add(USER_SEND_PACKET, None, recorder(log, "all 10"), 10, "m2")
    hooks.add(USER_SEND_PACKET, None, recorder(log, "all 90"), 90, "m2")
    assert await hooks.run(USER_SEND_PACKET, "a.example", None) is False
    assert log == ["all 10", "host 50", "all 90"]
    log.clear()
    assert await hooks.run(USER_SEND_PACKET, "b.example", None) is False
    assert log == ["all 10", "all 90"]


async def test_handlers_added_or_removed_after_a_run_are_seen_by_the_next_run() -> None:
    hooks = HookRegistry(reraise=True)
    log: list[str] = []
    assert not hooks.has_handlers(USER_SEND_PACKET, "a.example")
    assert await hooks.run(USER_SEND_PACKET, "a.example", None) is False
    generation = hooks.generation
    hooks.add(USER_SEND_PACKET, None, recorder(log, "stopper", STOP), 20, "m1")
    assert hooks.generation > generation
    assert hooks.has_handlers(USER_SEND_PACKET, "a.example")
    assert await hooks.run(USER_SEND_PACKET, "a.example", None) is True
    hooks.add(USER_SEND_PACKET, "a.example", recorder(log, "first"), 10, "m2")
    assert await hooks.run(USER_SEND_PACKET, "a.example", None) is True
    assert log == ["stopper", "first", "stopper"]
    hooks.remove_owner("m1")
    log.clear()
    assert await hooks.run(USER_SEND_PACKET, "a.example", None) is False
    assert log == ["first"]
    hooks.remove_owner("m2")
    assert not hooks.has_handlers(USER_SEND_PACKET, "a.example")
