"""Admin API categories `last` and `private` over the memory stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_api_support import Kernel

from meerkat.api import ApiError, last, private
from meerkat.stores.types import UserKey
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element

ALICE = Jid.parse("alice@localhost")
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
async def kernel() -> Kernel:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    await kernel.user("bob@localhost")
    await kernel.user("carol@example.com")
    return kernel


async def test_set_and_get_last(kernel: Kernel) -> None:
    assert await last.set_last(kernel.ctx, ALICE, T0, "gone") == {
        "user": "alice@localhost",
        "timestamp": "2024-01-02T03:04:05Z",
        "status": "gone",
    }
    assert await last.get_last(kernel.ctx, ALICE) == {
        "user": "alice@localhost",
        "timestamp": "2024-01-02T03:04:05Z",
        "status": "gone",
    }
    now = await last.set_last(kernel.ctx, ALICE, None, "")
    assert now["timestamp"] == last.datetime_text(int(kernel.clock.now()))


async def test_last_errors(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await last.get_last(kernel.ctx, ALICE)
    assert (info.value.code, info.value.message) == (
        "last_not_found",
        "Given user's last info not found",
    )
    with pytest.raises(ApiError) as info:
        await last.get_last(kernel.ctx, Jid.parse("nobody@localhost"))
    assert (info.value.code, info.value.message) == (
        "user_does_not_exist",
        "User nobody@localhost does not exist",
    )
    with pytest.raises(ApiError) as info:
        await last.count_active_users(kernel.ctx, "unknown.org", None)
    assert (info.value.code, info.value.message) == ("domain_not_found", "Domain not found")


async def test_count_active_and_old_users(kernel: Kernel) -> None:
    await last.set_last(kernel.ctx, ALICE, T0, "")
    await last.set_last(kernel.ctx, Jid.parse("carol@example.com"), T0, "")
    later = datetime(2024, 6, 1, tzinfo=UTC)
    assert await last.count_active_users(kernel.ctx, "localhost", T0) == 1
    assert await last.count_active_users(kernel.ctx, "localhost", later) == 0
    await kernel.login("bob@localhost/online")  # online users are never old
    assert await last.list_old_users(kernel.ctx, "localhost", later) == [
        {"jid": "alice@localhost", "timestamp": "2024-01-02T03:04:05Z"}
    ]
    assert await last.list_old_users(kernel.ctx, None, T0) == []
    everyone = await last.list_old_users(kernel.ctx, None, later)
    assert [u["jid"] for u in everyone] == ["carol@example.com", "alice@localhost"]


async def test_users_never_seen_are_old_and_removal_deletes_them(kernel: Kernel) -> None:
    removed = await last.remove_old_users(kernel.ctx, "localhost", T0)
    assert removed == [
        {"jid": "alice@localhost", "timestamp": None},
        {"jid": "bob@localhost", "timestamp": None},
    ]
    assert await kernel.accounts.list_users("localhost") == []
    assert await kernel.accounts.exists(Jid.parse("carol@example.com"))


async def test_a_category_without_its_module_is_deps_not_loaded(kernel: Kernel) -> None:
    kernel.ctx.modules = ["mod_private"]
    with pytest.raises(ApiError) as info:
        await last.get_last(kernel.ctx, ALICE)
    assert info.value.code == "deps_not_loaded"
    assert info.value.message == "Some of the required modules are not loaded"
    assert info.value.extra == {"not_loaded_modules": ["mod_last"]}
    kernel.ctx.modules = ["mod_last"]
    await last.set_last(kernel.ctx, ALICE, T0, "")


async def test_set_and_get_private(kernel: Kernel) -> None:
    element = parse_element("<my xmlns='alice:ns'>data</my>")
    assert await private.set_private(kernel.ctx, ALICE, element) == '<my xmlns="alice:ns">data</my>'
    assert (
        await private.get_private(kernel.ctx, ALICE, "my", "alice:ns")
        == '<my xmlns="alice:ns">data</my>'
    )
    stored = await kernel.stores.private.get(UserKey("localhost", "alice"), "alice:ns")
    assert stored is not None and "data" in stored
    assert await private.get_private(kernel.ctx, ALICE, "other", "x:ns") == '<other xmlns="x:ns"/>'


async def test_private_errors(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await private.get_private(kernel.ctx, Jid.parse("nobody@localhost"), "a", "b")
    assert (info.value.code, info.value.message) == (
        "not_found",
        "User nobody@localhost does not exist",
    )
    with pytest.raises(ApiError) as info:
        await private.set_private(kernel.ctx, ALICE, parse_element("<message/>"))
    assert info.value.code == "bad_namespace"


async def test_offline_messages_are_deleted_by_age_and_expiry(kernel: Kernel) -> None:
    from meerkat.api import offline
    from meerkat.stores.offline import OfflineMessage

    now = int(kernel.clock.now())
    key = UserKey("localhost", "alice")

    def message(age_days: int, expire: int | None = None) -> OfflineMessage:
        return OfflineMessage(now - age_days * 86400, "bob@localhost", "<message/>", expire)

    await kernel.stores.offline.store(key, [message(10), message(1), message(0, now - 1)], 100)
    assert await offline.delete_expired_messages(kernel.ctx, "localhost") == (
        "Removed 1 expired messages"
    )
    assert await offline.delete_old_messages(kernel.ctx, "localhost", 5) == "Removed 1 messages"
    assert await kernel.stores.offline.count(key) == 1
    with pytest.raises(ApiError) as info:
        await offline.delete_old_messages(kernel.ctx, "unknown.org", 5)
    assert info.value.code == "domain_not_found"
