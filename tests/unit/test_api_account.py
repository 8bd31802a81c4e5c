"""Admin API category `account` against an in-process kernel."""

from __future__ import annotations

import pytest
from test_api_support import NODE, Kernel

from meerkat.api import ApiError, account
from meerkat.core.hooks import REGISTER_USER, REMOVE_USER
from meerkat.xmpp.jid import Jid


@pytest.fixture
def kernel() -> Kernel:
    return Kernel()


async def test_register_user_returns_mongooseim_message_and_jid(kernel: Kernel) -> None:
    result = await account.register_user(kernel.ctx, "localhost", "alice", "pw")
    assert result == {
        "message": "User alice@localhost successfully registered",
        "jid": "alice@localhost",
    }
    assert await kernel.accounts.check_password(Jid.parse("alice@localhost"), "pw")


async def test_register_user_normalises_the_username(kernel: Kernel) -> None:
    result = await account.register_user(kernel.ctx, "LocalHost", "Alice", "pw")
    assert result["jid"] == "alice@localhost"


async def test_register_user_without_username_generates_one(kernel: Kernel) -> None:
    result = await account.register_user(kernel.ctx, "localhost", None, "pw")
    jid = Jid.parse(result["jid"])
    assert jid.domain == "localhost" and jid.local
    assert result["message"] == f"User {jid} successfully registered"
    assert await kernel.accounts.exists(jid)


async def test_registering_an_existing_user_is_error_exists(kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    with pytest.raises(ApiError) as info:
        await account.register_user(kernel.ctx, "localhost", "alice", "pw")
    assert info.value.code == "exists"
    assert info.value.message == f"User alice@localhost already registered at node {NODE}"
    assert info.value.extra == {"jid": "alice@localhost"}


async def test_registering_on_an_unknown_domain_cannot_register(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await account.register_user(kernel.ctx, "unknown.org", "alice", "pw")
    assert info.value.code == "cannot_register"
    assert info.value.message == (
        f"Can't register user alice@unknown.org at node {NODE}: not_allowed"
    )


async def test_registering_with_an_invalid_username_is_invalid_jid(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await account.register_user(kernel.ctx, "localhost", "a:b", "pw")
    assert (info.value.code, info.value.message) == ("invalid_jid", "Invalid JID a:b@localhost")


async def test_registering_with_an_empty_password_cannot_register(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await account.register_user(kernel.ctx, "localhost", "alice", "")
    assert info.value.code == "cannot_register"
    assert info.value.message.endswith(": null_password")


async def test_registering_past_max_users_per_domain_is_refused() -> None:
    kernel = Kernel(max_users_per_domain=1)
    await account.register_user(kernel.ctx, "localhost", "alice", "pw")
    with pytest.raises(ApiError) as info:
        await account.register_user(kernel.ctx, "localhost", "bob", "pw")
    assert info.value.code == "limit_per_domain_exceeded"
    assert info.value.message == "User limit has been exceeded for domain localhost"
    await account.register_user(kernel.ctx, "example.com", "bob", "pw")


async def test_register_and_remove_run_their_hooks(kernel: Kernel) -> None:
    seen: list[tuple[str, str]] = []

    async def on_register(_acc: object, params: dict[str, object]) -> None:
        seen.append(("register", str(params["jid"])))

    async def on_remove(_acc: object, params: dict[str, object]) -> None:
        # Runs before the account is deleted, so modules can still see it.
        assert await kernel.accounts.exists(Jid.parse("alice@localhost"))
        seen.append(("remove", str(params["jid"])))

    kernel.hooks.add(REGISTER_USER, None, on_register, 50, "test")
    kernel.hooks.add(REMOVE_USER, None, on_remove, 50, "test")
    await account.register_user(kernel.ctx, "localhost", "alice", "pw")
    await account.remove_user(kernel.ctx, Jid.parse("alice@localhost"))
    assert seen == [("register", "alice@localhost"), ("remove", "alice@localhost")]


async def test_remove_user_deletes_the_account_and_kicks_its_sessions(kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    phone = await kernel.login("alice@localhost/phone")
    result = await account.remove_user(kernel.ctx, Jid.parse("alice@localhost/phone"))
    assert result == {
        "message": "User alice@localhost successfully unregistered",
        "jid": "alice@localhost",
    }
    assert not await kernel.accounts.exists(Jid.parse("alice@localhost"))
    assert phone.kicks == [("not-authorized", None)]


async def test_removing_a_missing_user_is_not_allowed(kernel: Kernel) -> None:
    with pytest.raises(ApiError) as info:
        await account.remove_user(kernel.ctx, Jid.parse("nobody@localhost"))
    assert info.value.code == "not_allowed"
    assert info.value.message == "User does not exist or you are not authorized properly"


async def test_list_and_count_users_of_a_domain(kernel: Kernel) -> None:
    await kernel.user("bob@localhost")
    await kernel.user("alice@localhost")
    await kernel.user("carol@example.com")
    assert await account.list_users(kernel.ctx, "localhost") == [
        "alice@localhost",
        "bob@localhost",
    ]
    assert await account.count_users(kernel.ctx, "localhost") == 2
    assert await account.count_users(kernel.ctx, "example.com") == 1


async def test_list_users_of_an_unknown_domain_is_domain_not_found(kernel: Kernel) -> None:
    for call in (account.list_users, account.count_users):
        with pytest.raises(ApiError) as info:
            await call(kernel.ctx, "unknown.org")
        assert (info.value.code, info.value.message) == (
            "domain_not_found",
            "Domain does not exist",
        )


async def test_check_user_reports_existence_without_error(kernel: Kernel) -> None:
    await kernel.user("alice@localhost")
    assert await account.check_user(kernel.ctx, Jid.parse("alice@localhost")) == {
        "exist": True,
        "message": "User alice@localhost exists",
    }
    assert await account.check_user(kernel.ctx, Jid.parse("bob@localhost")) == {
        "exist": False,
        "message": "User bob@localhost does not exist",
    }


async def test_check_password_says_correct_or_incorrect(kernel: Kernel) -> None:
    await kernel.user("alice@localhost", "right")
    alice = Jid.parse("alice@localhost")
    assert await account.check_password(kernel.ctx, alice, "right") == {
        "correct": True,
        "message": "Password 'right' for user alice@localhost is correct",
    }
    assert await account.check_password(kernel.ctx, alice, "wrong") == {
        "correct": False,
        "message": "Password 'wrong' for user alice@localhost is incorrect",
    }
    with pytest.raises(ApiError) as info:
        await account.check_password(kernel.ctx, Jid.parse("bob@localhost"), "x")
    assert info.value.code == "user_does_not_exist"


async def test_change_user_password(kernel: Kernel) -> None:
    await kernel.user("alice@localhost", "old")
    alice = Jid.parse("alice@localhost")
    assert await account.change_user_password(kernel.ctx, alice, "new") == {
        "message": "Password changed",
        "jid": "alice@localhost",
    }
    assert await kernel.accounts.check_password(alice, "new")
    assert not await kernel.accounts.check_password(alice, "old")


async def test_change_password_errors_empty_first_then_not_allowed(kernel: Kernel) -> None:
    nobody = Jid.parse("nobody@localhost")
    with pytest.raises(ApiError) as info:
        await account.change_user_password(kernel.ctx, nobody, "")
    assert (info.value.code, info.value.message) == ("empty_password", "Empty password")
    with pytest.raises(ApiError) as info:
        await account.change_user_password(kernel.ctx, nobody, "pw")
    assert info.value.code == "not_allowed"


async def test_ban_user_kicks_sessions_and_scrambles_the_password(kernel: Kernel) -> None:
    await kernel.user("alice@localhost", "pw")
    phone = await kernel.login("alice@localhost/phone")
    alice = Jid.parse("alice@localhost")
    result = await account.ban_user(kernel.ctx, alice, "spam")
    assert result["message"] == "User alice@localhost successfully banned with reason: spam"
    assert phone.kicks
    assert not await kernel.accounts.check_password(alice, "pw")


async def test_check_password_hash_works_on_plain_passwords_only(kernel: Kernel) -> None:
    import hashlib

    plain = Kernel()
    plain.accounts.password_format = "plain"
    await plain.user("alice@localhost", "pw")
    alice = Jid.parse("alice@localhost")
    md5 = "".join(f"{b:X}" for b in hashlib.md5(b"pw").digest())
    assert await account.check_password_hash(plain.ctx, alice, md5, "md5") == {
        "correct": True,
        "message": "Password hash is correct",
    }
    sha = hashlib.sha1(b"pw").hexdigest()  # zero-padded lower case: not MongooseIM's form
    assert (await account.check_password_hash(plain.ctx, alice, sha, "sha"))["correct"] is False
    with pytest.raises(ApiError) as info:
        await account.check_password_hash(plain.ctx, alice, md5, "sha256")
    assert info.value.code == "wrong_method"
    await kernel.user("alice@localhost", "pw")
    with pytest.raises(ApiError) as info:
        await account.check_password_hash(kernel.ctx, alice, md5, "md5")
    assert (info.value.code, info.value.message) == (
        "wrong_user",
        "User does not exist or using SCRAM password",
    )


def test_mongooseim_hex_is_upper_case_and_unpadded() -> None:
    assert account._mongoose_hex(bytes([0x0A, 0xFF, 0x00])) == "AFF0"


async def test_import_users_sorts_every_row(
    kernel: Kernel, tmp_path: pytest.TempPathFactory
) -> None:
    await kernel.user("bob@localhost")
    path = tmp_path / "users.csv"
    path.write_text(
        "alice,localhost,pw\n"
        "bob,localhost,pw\n"
        "carol,unknown.org,pw\n"
        "a:b,localhost,pw\n"
        "dave,localhost,\n"
        "just,two\n"
        "\n",
        encoding="utf-8",
    )
    assert await account.import_users(kernel.ctx, str(path)) == {
        "status": "Completed",
        "created": ["alice@localhost"],
        "existing": ["bob@localhost"],
        "notAllowed": ["carol@unknown.org"],
        "invalidJID": ["a:b@localhost"],
        "emptyPassword": ["dave@localhost"],
        "invalidRecord": ["just,two"],
    }
    assert await kernel.accounts.check_password(Jid.parse("alice@localhost"), "pw")
    with pytest.raises(ApiError) as info:
        await account.import_users(kernel.ctx, str(tmp_path / "missing.csv"))
    assert (info.value.code, info.value.message) == ("file_not_found", "File not found")
