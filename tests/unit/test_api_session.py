"""Admin API category `session` against an in-process kernel with fake session handles."""

from __future__ import annotations

import pytest
from test_api_support import NODE, Kernel

from meerkat.api import ApiError, session
from meerkat.xmpp.jid import Jid


@pytest.fixture
async def kernel() -> Kernel:
    kernel = Kernel()
    for user in ("alice@localhost", "bob@localhost", "carol@example.com"):
        await kernel.user(user)
    return kernel


async def test_list_sessions_gives_mongooseim_session_fields(kernel: Kernel) -> None:
    await kernel.login("alice@localhost/phone", priority=5)
    kernel.clock.advance(42)
    [info] = await session.list_sessions(kernel.ctx)
    assert info == {
        "user": "alice@localhost/phone",
        "connection": "c2s",
        "ip": "127.0.0.1",
        "port": 50000,
        "priority": 5,
        "node": NODE,
        "uptime": 42,
    }


async def test_list_and_count_sessions_globally_and_per_domain(kernel: Kernel) -> None:
    await kernel.login("alice@localhost/a")
    await kernel.login("bob@localhost/b")
    await kernel.login("carol@example.com/c")
    users = [s["user"] for s in await session.list_sessions(kernel.ctx)]
    assert sorted(users) == ["alice@localhost/a", "bob@localhost/b", "carol@example.com/c"]
    assert await session.count_sessions(kernel.ctx) == 3
    assert await session.count_sessions(kernel.ctx, "localhost") == 2
    listed = await session.list_sessions(kernel.ctx, "example.com")
    assert [s["user"] for s in listed] == ["carol@example.com/c"]


async def test_unknown_domain_is_domain_not_found(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await session.count_sessions(kernel.ctx, "unknown.org")
    assert (info.value.code, info.value.message) == ("domain_not_found", "Domain not found")


async def test_user_sessions_resources_and_nth_resource(kernel: Kernel) -> None:
    await kernel.login("alice@localhost/b")
    await kernel.login("alice@localhost/a")
    alice = Jid.parse("alice@localhost")
    assert await session.count_user_resources(kernel.ctx, alice) == 2
    listed = await session.list_user_sessions(kernel.ctx, alice)
    assert [s["user"] for s in listed] == ["alice@localhost/a", "alice@localhost/b"]
    assert await session.get_user_resource(kernel.ctx, alice, 2) == "b"
    with pytest.raises(ApiError) as info:
        await session.get_user_resource(kernel.ctx, alice, 3)
    assert (info.value.code, info.value.message) == ("wrong_res_number", "Wrong resource number: 3")


async def test_kick_user_session_closes_it_with_the_reason(kernel: Kernel) -> None:
    phone = await kernel.login("alice@localhost/phone")
    result = await session.kick_user_session(kernel.ctx, Jid.parse("alice@localhost/phone"), "bye")
    assert result == {
        "jid": "alice@localhost/phone",
        "kicked": True,
        "code": None,
        "message": "Session kicked",
    }
    assert phone.kicks == [("policy-violation", "bye")]


async def test_kick_without_reason_uses_the_default_text(kernel: Kernel) -> None:
    phone = await kernel.login("alice@localhost/phone")
    await session.kick_user_session(kernel.ctx, Jid.parse("alice@localhost/phone"))
    assert phone.kicks == [("policy-violation", "Kicked by administrator")]


async def test_kicking_an_offline_session_is_no_session(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await session.kick_user_session(kernel.ctx, Jid.parse("alice@localhost/none"))
    assert (info.value.code, info.value.message) == ("no_session", "No active session")
    assert info.value.extra == {"jid": "alice@localhost/none", "reason": None}


async def test_kick_user_closes_every_session(kernel: Kernel) -> None:
    a = await kernel.login("alice@localhost/a")
    b = await kernel.login("alice@localhost/b")
    results = await session.kick_user(kernel.ctx, Jid.parse("alice@localhost"), "r")
    assert [r["jid"] for r in results] == ["alice@localhost/a", "alice@localhost/b"]
    assert all(r["kicked"] for r in results)
    assert a.kicks == b.kicks == [("policy-violation", "r")]
    assert await session.kick_user(kernel.ctx, Jid.parse("bob@localhost")) == []


async def test_kicking_a_remote_session_goes_through_the_session_manager(
    kernel: Kernel,
) -> None:
    from meerkat.core.sessions import SessionRecord

    kicked: list[tuple[str, str]] = []

    async def remote_kick(record: SessionRecord, condition: str) -> None:
        kicked.append((str(record.jid), condition))

    kernel.sessions.remote_kick = remote_kick
    record = SessionRecord("1.1@other@node", Jid.parse("alice@localhost/far"), "other@node")
    await kernel.sessions.table.put(record)
    await session.kick_user_session(kernel.ctx, Jid.parse("alice@localhost/far"))
    assert kicked == [("alice@localhost/far", "policy-violation")]
