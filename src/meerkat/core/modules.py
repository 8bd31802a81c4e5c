"""Modules: features declare their hooks, IQ handlers and config; the loader acts on them.

A module never registers anything itself. `ModuleManager.start` asks each enabled module for
its `hooks()` and `iq_handlers()`, registers them under the module as owner, then awaits
`start()`; `stop` undoes exactly that. A module talks to the server only through its
`ModuleContext`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..xmpp.element import Element
from ..xmpp.jid import Jid
from .acc import Acc
from .clock import Clock
from .hooks import Handler, Hook, HookRegistry
from .iq import IqDispatcher, IqSpec
from .router import Router
from .sessions import SessionManager
from .tasks import TaskOwner

if TYPE_CHECKING:
    from ..auth.accounts import Accounts

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HookSpec:
    """A module's handler for one hook. ``host_type=None`` means every host."""

    hook: Hook
    handler: Handler
    priority: int = 50
    host_type: str | None = None


@dataclass(frozen=True)
class NoConfig:
    """For modules without options."""


@dataclass
class ModuleContext:
    """Everything a module may use of the server."""

    node: str
    hosts: Sequence[str]
    default_host: str
    clock: Clock
    hooks: HookRegistry
    iq: IqDispatcher
    router: Router
    sessions: SessionManager
    stores: Any
    """The feature stores (``stores.roster``, ``stores.offline`` ...), memory or SQL."""
    accounts: Accounts
    tasks: TaskOwner
    modules: dict[str, Module] = field(default_factory=dict)
    general: Any = None
    """The `[general]` config section."""

    def server_jid(self, host: str | None = None) -> Jid:
        return Jid("", host or self.default_host)

    async def route(self, element: Element) -> None:
        """Route a stanza the module built (``from`` and ``to`` set)."""
        await self.router.route_element(element)

    async def route_acc(self, acc: Acc) -> None:
        await self.router.route(acc)

    async def run_hook(self, hook: Hook, host_type: str | None, acc: Any, **params: Any) -> bool:
        return await self.hooks.run(hook, host_type, acc, params)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Start a background task owned by the server's task group."""
        return self.tasks.create_task(coro, name=name)

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy work (password hashing) off the event loop."""
        return await asyncio.to_thread(fn, *args)

    def module(self, name: str) -> Module | None:
        return self.modules.get(name)


class Module:
    """Base class of features. Subclasses set ``name`` (MongooseIM's key) and ``Config``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    depends: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: ModuleContext, config: Any) -> None:
        self.ctx = ctx
        self.config = config

    def hooks(self) -> Iterable[HookSpec]:
        return ()

    def iq_handlers(self) -> Iterable[IqSpec]:
        return ()

    def features(self) -> Iterable[str]:
        """Disco features this module adds to the server's (and accounts') disco#info."""
        return ()

    async def start(self) -> None:
        """Called after the module's hooks and handlers are registered."""

    async def stop(self) -> None:
        """Called before they are removed."""


class ModuleManager:
    """Starts the enabled modules in dependency order and stops them in reverse."""

    def __init__(self, ctx: ModuleContext, registry: Mapping[str, type[Module]]) -> None:
        self.ctx = ctx
        self.registry = registry
        self.started: list[Module] = []

    def _order(self, configs: Mapping[str, Any]) -> list[str]:
        ordered: list[str] = []

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in ordered:
                return
            if name in chain:
                raise ValueError(f"modules: dependency cycle {' -> '.join((*chain, name))}")
            if name not in self.registry:
                raise ValueError(f"modules.{name}: unknown module")
            for dep in self.registry[name].depends:
                visit(dep, (*chain, name))
            ordered.append(name)

        for name in configs:
            visit(name, ())
        return ordered

    async def start(self, configs: Mapping[str, Any]) -> None:
        for name in self._order(configs):
            cls = self.registry[name]
            config = configs.get(name)
            module = cls(self.ctx, config if config is not None else cls.Config())
            for spec in module.hooks():
                self.ctx.hooks.add(spec.hook, spec.host_type, spec.handler, spec.priority, module)
            for iq_spec in module.iq_handlers():
                self.ctx.iq.register(iq_spec, module)
            self.ctx.modules[name] = module
            await module.start()
            self.started.append(module)
            log.debug("module_started module=%s", name)

    async def stop(self) -> None:
        while self.started:
            module = self.started.pop()
            try:
                await module.stop()
            finally:
                self.ctx.hooks.remove_owner(module)
                self.ctx.iq.remove_owner(module)
                self.ctx.router.remove_owner(module)
                self.ctx.modules.pop(module.name, None)

    def features(self) -> list[str]:
        out: list[str] = []
        for module in self.started:
            out.extend(module.features())
        return out
