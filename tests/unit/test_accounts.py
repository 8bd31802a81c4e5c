"""The account service (`meerkat.auth.accounts.Accounts`) over a memory user store."""

from __future__ import annotations

import pytest
from test_api_support import HOSTS, Kernel

from meerkat.auth import password as pw
from meerkat.auth.accounts import AccountError, AccountExists, Accounts
from meerkat.core import HookRegistry
from meerkat.stores.users import MemoryUserStore
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.sasl.scram import crypto

ALICE = Jid.parse("alice@localhost")


class CountingStore(MemoryUserStore):
    """Counts store calls, to check SCRAM login needs only one."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def get_password(self, server: str, username: str) -> str | None:
        self.calls += 1
        return await super().get_password(server, username)

    async def user_exists(self, server: str, username: str) -> bool:
        self.calls += 1
        return await super().user_exists(server, username)


def make_accounts(**options: object) -> tuple[Accounts, CountingStore]:
    store = CountingStore()
    accounts = Accounts(store, HOSTS, HookRegistry(reraise=True), iterations=16, **options)  # type: ignore[arg-type]
    return accounts, store


async def test_register_stores_a_multi_scram_record_never_the_password() -> None:
    accounts, store = make_accounts()
    assert await accounts.register(Jid.parse("Alice@LocalHost/res"), "s3cret") == ALICE
    record = await store.get_password("localhost", "alice")
    assert record is not None and record.startswith("==MULTI_SCRAM==,16,")
    assert "s3cret" not in record
    assert isinstance(pw.parse_record(record), pw.ScramRecord)


async def test_plain_format_stores_the_password_itself() -> None:
    accounts, store = make_accounts(password_format="plain")
    await accounts.register(ALICE, "s3cret")
    assert await store.get_password("localhost", "alice") == "s3cret"
    assert await accounts.check_plain(ALICE, "s3cret")


async def test_register_refuses_existing_unknown_domain_bad_name_and_empty_password() -> None:
    accounts, _ = make_accounts()
    await accounts.register(ALICE, "pw")
    with pytest.raises(AccountExists):
        await accounts.register(ALICE, "pw")
    cases = [
        (Jid.parse("alice@elsewhere.org"), "pw", "not_allowed"),
        (Jid.parse("localhost"), "pw", "invalid_jid"),
        (Jid.parse("bob@localhost"), "", "null_password"),
    ]
    for jid, password, reason in cases:
        with pytest.raises(AccountError) as info:
            await accounts.register(jid, password)
        assert info.value.reason == reason


async def test_user_jid_validates_the_username() -> None:
    accounts, _ = make_accounts()
    assert accounts.user_jid("Bob", "localhost") == Jid("bob", "localhost")
    with pytest.raises(AccountError) as info:
        accounts.user_jid("a@b", "localhost")
    assert info.value.reason == "invalid_jid"


async def test_max_users_per_domain_counts_per_domain() -> None:
    accounts, _ = make_accounts(max_users_per_domain=1)
    await accounts.register(ALICE, "pw")
    await accounts.register(Jid.parse("alice@example.com"), "pw")
    with pytest.raises(AccountError) as info:
        await accounts.register(Jid.parse("bob@localhost"), "pw")
    assert info.value.reason == "limit_per_domain_exceeded"


async def test_check_password_and_set_password() -> None:
    accounts, _ = make_accounts()
    await accounts.register(ALICE, "old")
    assert await accounts.check_password(ALICE, "old")
    assert not await accounts.check_password(ALICE, "")
    assert not await accounts.check_password(Jid.parse("bob@localhost"), "old")
    assert await accounts.set_password(ALICE, "new")
    assert await accounts.check_plain(ALICE, "new")
    assert not await accounts.set_password(Jid.parse("bob@localhost"), "new")
    with pytest.raises(AccountError):
        await accounts.set_password(ALICE, "")


async def test_scram_credentials_come_from_one_store_call() -> None:
    accounts, store = make_accounts()
    await accounts.register(ALICE, "pencil")
    store.calls = 0
    creds = await accounts.get_scram_credentials(ALICE, "SHA-256")
    assert store.calls == 1
    assert creds is not None and creds.iterations == 16
    expected = crypto.credentials_from_password(crypto.SHA256, "pencil", creds.salt, 16)
    assert creds == expected
    assert await accounts.get_scram_credentials(ALICE, "sha256") == creds


async def test_scram_credentials_are_none_for_missing_user_or_hash() -> None:
    accounts, _ = make_accounts(hashes=("sha256",))
    await accounts.register(ALICE, "pencil")
    assert await accounts.get_scram_credentials(ALICE, "SHA-512") is None
    assert await accounts.get_scram_credentials(Jid.parse("bob@localhost"), "SHA-256") is None
    assert await accounts.get_scram_credentials(Jid.parse("x@other.org"), "SHA-256") is None


async def test_scram_credentials_are_derived_from_a_plain_record() -> None:
    accounts, _ = make_accounts(password_format="plain")
    await accounts.register(ALICE, "pencil")
    creds = await accounts.get_scram_credentials(ALICE, "SHA-1")
    assert creds is not None
    assert creds == crypto.credentials_from_password(crypto.SHA1, "pencil", creds.salt, 16)


async def test_list_count_and_exists() -> None:
    accounts, _ = make_accounts()
    await accounts.register(Jid.parse("bob@localhost"), "pw")
    await accounts.register(ALICE, "pw")
    assert await accounts.list_users("LOCALHOST") == [ALICE, Jid("bob", "localhost")]
    assert await accounts.count_users("localhost") == 2
    assert await accounts.count_users("unknown.org") == 0
    assert await accounts.list_users("not a domain") == []
    assert await accounts.exists(ALICE)
    assert not await accounts.exists(Jid.parse("localhost"))


async def test_remove_closes_sessions_and_reports_missing_users() -> None:
    kernel = Kernel()
    await kernel.user("alice@localhost")
    laptop = await kernel.login("alice@localhost/laptop")
    assert await kernel.accounts.remove(ALICE)
    assert laptop.kicks == [("not-authorized", None)]
    assert not await kernel.accounts.remove(ALICE)


async def test_from_config_reads_the_auth_section() -> None:
    from meerkat.config.schema.auth import AuthConfig, PasswordConfig

    auth = AuthConfig(
        password=PasswordConfig(format="plain", hash=("sha256",), scram_iterations=99),
        max_users_per_domain=5,
    )
    accounts = Accounts.from_config(MemoryUserStore(), HOSTS, HookRegistry(), None, auth)
    assert accounts.password_format == "plain"
    assert accounts.hashes == ("sha256",)
    assert accounts.iterations == 99
    assert accounts.max_users_per_domain == 5
    default = Accounts.from_config(MemoryUserStore(), HOSTS, HookRegistry(), None, AuthConfig())
    assert default.max_users_per_domain is None
