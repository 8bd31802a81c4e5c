"""Shared helpers for the admin API, GraphQL and meerkatctl tests (no tests here).

`Kernel` is an in-process node: hooks, session manager, router and accounts over memory
stores, with `FakeSession` handles standing in for c2s sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meerkat.api import NodeApiContext
from meerkat.auth.accounts import Accounts
from meerkat.core import HookRegistry, IqDispatcher, ManualClock, Router, SessionManager
from meerkat.core.acc import Acc
from meerkat.core.modules import ModuleContext, ModuleManager
from meerkat.core.sessions import SessionRecord
from meerkat.core.tasks import TaskOwner
from meerkat.stores import memory_stores
from meerkat.xmpp.jid import Jid

HOSTS = ("localhost", "example.com")
NODE = "meerkat@testhost"


@dataclass
class FakeSession:
    """A session handle that records what the session manager asks of it."""

    delivered: list[Acc] = field(default_factory=list)
    kicks: list[tuple[str, str | None]] = field(default_factory=list)

    def deliver(self, acc: Acc) -> None:
        self.delivered.append(acc)

    def kick(self, condition: str, text: str | None = None) -> None:
        self.kicks.append((condition, text))


class Kernel:
    """One node's kernel with memory stores and an `ApiContext` over it."""

    def __init__(self, *, max_users_per_domain: int | None = None) -> None:
        self.clock = ManualClock()
        self.hooks = HookRegistry(reraise=True)
        self.sessions = SessionManager(NODE)
        self.stores = memory_stores()
        self.store = self.stores.users
        self.accounts = Accounts(
            self.store,
            HOSTS,
            self.hooks,
            self.sessions,
            iterations=16,
            max_users_per_domain=max_users_per_domain,
        )
        self.router = Router(
            HOSTS, self.sessions, IqDispatcher(), self.hooks, self.clock, self.accounts.exists
        )
        self.ctx = NodeApiContext(
            hosts=HOSTS,
            node=NODE,
            sessions=self.sessions,
            router=self.router,
            accounts=self.accounts,
            clock=self.clock,
            started_at=self.clock.monotonic(),
            version="0.1.0",
            stores=self.stores,
        )

    async def start_modules(self, *names: str) -> ModuleManager:
        """Start real modules (``mod_roster`` ...) on this kernel; stop with `stop_modules`."""
        from meerkat.modules import MODULES

        self.tasks = TaskOwner()
        module_ctx = ModuleContext(
            node=NODE,
            hosts=HOSTS,
            default_host=HOSTS[0],
            clock=self.clock,
            hooks=self.hooks,
            iq=self.router.iq,
            router=self.router,
            sessions=self.sessions,
            stores=self.stores,
            accounts=self.accounts,
            tasks=self.tasks,  # type: ignore[arg-type]
        )
        self.manager = ModuleManager(module_ctx, MODULES)
        await self.manager.start(dict.fromkeys(names))
        self.ctx.modules = list(module_ctx.modules)
        return self.manager

    async def stop_modules(self) -> None:
        await self.manager.stop()
        await self.tasks.aclose()

    async def user(self, jid: str, password: str = "secret") -> Jid:
        return await self.accounts.register(Jid.parse(jid), password)

    async def login(self, full_jid: str, priority: int | None = 0) -> FakeSession:
        jid = Jid.parse(full_jid)
        handle = FakeSession()
        sid = self.sessions.new_sid(self.clock.now())
        info = {"connection": "c2s", "ip": "127.0.0.1", "port": 50000}
        record = SessionRecord(sid, jid, NODE, priority, info)
        await self.sessions.open(record, handle)
        return handle
