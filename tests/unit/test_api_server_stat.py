"""Admin API categories `server` and `stat`."""

from __future__ import annotations

from test_api_support import NODE, Kernel

from meerkat.api import server, stat


async def test_status_says_running_with_version() -> None:
    kernel = Kernel()
    assert await server.status(kernel.ctx) == {
        "statusCode": "RUNNING",
        "message": f"The node {NODE} is started. Status: started "
        "Meerkat 0.1.0 is running in that node.",
        "version": "0.1.0",
        "commitHash": None,
    }


async def test_global_stats_count_accounts_sessions_and_uptime() -> None:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    await kernel.user("bob@example.com")
    await kernel.login("alice@localhost/a")
    kernel.clock.advance(90.7)
    assert await stat.global_stats(kernel.ctx) == {
        "uptimeSeconds": 90,
        "registeredUsers": 2,
        "onlineUsersNode": 1,
        "onlineUsers": 1,
        "incomingS2S": 0,
        "outgoingS2S": 0,
    }
    kernel.ctx.s2s_counts = lambda: (3, 4)
    stats = await stat.global_stats(kernel.ctx)
    assert (stats["incomingS2S"], stats["outgoingS2S"]) == (3, 4)


async def test_domain_stats() -> None:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    await kernel.login("bob@localhost/x")
    assert await stat.domain_stats(kernel.ctx, "localhost") == {
        "registeredUsers": 2,
        "onlineUsers": 1,
    }
    assert await stat.domain_stats(kernel.ctx, "unknown.org") == {
        "registeredUsers": 0,
        "onlineUsers": 0,
    }


async def test_log_level_can_be_read_and_set() -> None:
    import logging

    import pytest

    from meerkat.api import ApiError

    kernel = Kernel()
    logger = logging.getLogger("meerkat")
    saved = logger.level
    try:
        assert await server.set_loglevel(kernel.ctx, "DEBUG") == "Log level successfully set."
        assert logger.getEffectiveLevel() == logging.DEBUG
        assert await server.get_loglevel(kernel.ctx) == "DEBUG"
        await server.set_loglevel(kernel.ctx, "NOTICE")
        assert await server.get_loglevel(kernel.ctx) == "NOTICE"
        await server.set_loglevel(kernel.ctx, "NONE")
        assert await server.get_loglevel(kernel.ctx) == "NONE"
        await server.set_loglevel(kernel.ctx, "ALL")
        assert await server.get_loglevel(kernel.ctx) == "ALL"
        with pytest.raises(ApiError):
            await server.set_loglevel(kernel.ctx, "LOUD")
    finally:
        logger.setLevel(saved)
