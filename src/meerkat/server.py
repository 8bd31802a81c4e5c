"""`Node`: one running Meerkat node, wired config -> database -> kernel -> modules -> listeners.

Start order matters: the database must answer (and have the right schema) before anything
listens; the cluster (`[internal_databases.cets]`) starts next and joins whoever discovery
finds, so the session table holds the whole cluster's sessions before the first client
arrives; modules start before listeners so the first client finds every feature. Stop runs
the other way: stop accepting, tell every session `system-shutdown` and wait for them to
finish (their rows leave the session table, their queued stanzas are re-routed, so messages
land in offline storage or on another node), leave the cluster, stop modules, then close
the database.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .auth.accounts import Accounts
from .c2s.hibernate import hibernate_forever
from .c2s.node import C2SNode
from .c2s.settings import C2SSettings
from .c2s.throttle import AuthThrottle
from .clustering import XmppCluster, cluster_settings
from .config import ServerConfig, constant_value, match_rule, pool_settings
from .config.schema.listen import C2SListener as C2SListenerConfig
from .core.clock import Clock, SystemClock
from .core.hooks import HookRegistry
from .core.iq import IqDispatcher
from .core.loopwatch import LoopMonitor
from .core.modules import Module, ModuleContext, ModuleManager
from .core.router import Router
from .core.sessions import SessionManager
from .core.tasks import TaskOwner
from .db import Database
from .listeners.certs import ensure_self_signed
from .listeners.http import HttpListener
from .listeners.tcp import C2SListener, TlsMaterial
from .listeners.tls import certificate_der, server_context
from .stores import Stores, sql_stores
from .xmpp.jid import Jid
from .xmpp.sasl.mechanisms import from_config as sasl_from_config

log = logging.getLogger(__name__)

_UNKNOWN = object()
"""`Node._access_constants`: not looked at yet."""
_HASH_NAMES = {
    "sha": "SHA-1",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}


GC_THRESHOLD = (20_000, 2, 200)
"""Garbage collector generation thresholds of a server process (CPython's: 700, 10, 10).

A young pass every 20,000 net allocations (see `tune_gc`). The middle generation is
collected every 2 young passes, not 20: it holds what survived the young passes since, and
a young generation is often far larger than 20,000 objects (frees of old objects count
against the threshold, so a mass logout lets hundreds of thousands of new ones pile up), so
20 of them made a middle pass of 300 ms in a 10,000-session logout storm. Every object
still goes through the middle generation once, in smaller passes. The old generation is
considered every 400 young passes, as before (2 x 200), and collected only when it grew by
25 % since its last pass (CPython's rule).
"""


def tune_gc() -> None:
    """Process-wide, so only `Node.run` (the process's node) calls it.

    Everything allocated while starting (modules, config, schemas, the code's own objects)
    lives as long as the process: `gc.freeze` moves it out of the collector's way. Each
    stanza in flight is a handful of container objects (an element, its attributes, an Acc;
    more when it crosses the cluster), so with CPython's default of a young collection
    every 700 net allocations a busy node spends a large share of its time collecting
    objects that are about to be freed by reference counting anyway (measured: ~20% of a
    node's CPU when forwarding stanzas between nodes). Reference cycles are still
    collected, just less often. Start-up's own garbage is collected first: frozen, it would
    never be freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class Node:
    """A Meerkat node. `start()`, then `stop()`; `run()` does both around a stop signal."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        modules: Mapping[str, type[Module]] | None = None,
        clock: Clock | None = None,
        reraise_hook_errors: bool = False,
    ) -> None:
        self.config = config
        general = config.general
        self.hosts: tuple[str, ...] = tuple(general.hosts)
        self.default_host = general.default_server_domain
        self.node = general.node_name
        self.data_dir = Path(general.data_dir)
        self.clock: Clock = clock or SystemClock()
        self.version = __version__
        self.commit_hash = os.environ.get("MEERKAT_COMMIT", "")
        self.cluster: XmppCluster | None = None
        """The node's cluster membership once started (None: a standalone node). The admin
        API's `cets` category reads it (`ClusterInfo`)."""
        self.reuse_port = config.general.workers > 1
        """Listeners share their ports with sibling worker processes (`general.workers`)."""
        self.s2s_counts: Callable[[], tuple[int, int]] | None = None
        if modules is None:
            from .modules import MODULES

            modules = MODULES
        self._module_registry = modules
        self.hooks = HookRegistry(reraise=reraise_hook_errors)
        self.iq = IqDispatcher()
        self.sessions = SessionManager(self.node)
        self.router = Router(
            self.hosts, self.sessions, self.iq, self.hooks, self.clock, self._user_exists
        )
        self.db: Database | None = None
        self.stores: Stores | None = None
        self.accounts: Accounts | None = None
        self.started_at = 0.0
        self.c2s_listeners: list[C2SListener] = []
        self.http_listeners: list[HttpListener] = []
        self._tasks: TaskOwner | None = None
        self._module_manager: ModuleManager | None = None
        self._c2s_node: C2SNode | None = None
        self._stop_requested = asyncio.Event()
        self.loop_monitor = LoopMonitor(self.node)
        """Logs the event loop's stalls (`event_loop_stalled`)."""
        self._host_settings: dict[str, Any] = {}
        self._access_constants: dict[tuple[str, str], object] = {}

    # -- start --------------------------------------------------------------------------------
    async def start(self) -> None:
        self.started_at = self.clock.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pool = self.config.outgoing_pools.rdbms.get("default")
        if pool is None:
            raise RuntimeError("outgoing_pools.rdbms.default: a default database pool is needed")
        self.db = await Database.open(pool_settings(pool), self.data_dir)
        try:
            await self.db.ensure_schema()
        except BaseException:
            await self.db.close()
            raise
        self._tasks = TaskOwner()
        try:
            await self._start_kernel()
        except BaseException:
            await self.stop()
            raise
        log.info("node_started node=%s hosts=%s", self.node, ",".join(self.hosts))

    async def _start_kernel(self) -> None:
        assert self.db is not None and self._tasks is not None
        settings = cluster_settings(self.config)
        if settings is not None:
            self.cluster = await XmppCluster.start(
                settings,
                db=self.db,
                sessions=self.sessions,
                router=self.router,
                hooks=self.hooks,
                clock=self.clock,
                spawn=self.spawn,
            )
        self.stores = sql_stores(self.db)
        self.accounts = Accounts.from_config(
            self.stores.users, self.hosts, self.hooks, self.sessions, self.config.auth
        )
        ctx = ModuleContext(
            node=self.node,
            hosts=self.hosts,
            default_host=self.default_host,
            clock=self.clock,
            hooks=self.hooks,
            iq=self.iq,
            router=self.router,
            sessions=self.sessions,
            stores=self.stores,
            accounts=self.accounts,
            tasks=self._tasks,
            general=self.config.general,
        )
        self._module_manager = ModuleManager(ctx, self._module_registry)
        await self._module_manager.start(self.config.modules)
        slowdown = self.config.auth.slowdown
        self._c2s_node = C2SNode(
            node=self.node,
            clock=self.clock,
            hooks=self.hooks,
            iq=self.iq,
            router=self.router,
            sessions=self.sessions,
            accounts=self.accounts,
            throttle=AuthThrottle(
                free_failures=slowdown.failures_before_delay,
                base_delay=slowdown.delay / 1000,
                max_delay=slowdown.max_delay / 1000,
                forget_after=slowdown.window,
            ),
            access=self.access,
            shapers={name: shaper.max_rate for name, shaper in self.config.shaper.items()},
        )
        self.spawn(hibernate_forever(self._c2s_node.live))
        self.spawn(self.loop_monitor.run())
        await self._start_listeners()

    async def _start_listeners(self) -> None:
        assert self._c2s_node is not None
        cert_dir = self.data_dir / "certs"
        for listener in self.config.listen.c2s:
            tls = None
            if listener.tls.enabled:
                certfile, keyfile = listener.tls.certfile, listener.tls.keyfile
                if certfile is None:
                    certfile, keyfile = ensure_self_signed(cert_dir, self.hosts)
                tls = TlsMaterial(
                    server_context(certfile, keyfile, listener.tls.min_version),
                    certificate_der(certfile),
                )
            c2s = C2SListener(
                self._c2s_node,
                self._c2s_settings(listener),
                host=listener.ip_address,
                port=listener.port,
                tls=tls,
                direct_tls=listener.tls.mode == "tls",
                backlog=listener.backlog,
                max_connections=listener.max_connections,
                reuse_port=self.reuse_port,
                proxy_protocol=listener.proxy_protocol,
            )
            await c2s.start()
            self.c2s_listeners.append(c2s)
        for http in self.config.listen.http:
            listener_http = HttpListener(
                self,
                http,
                reuse_port=self.reuse_port,
                c2s_node=self._c2s_node,
                c2s_settings=self._c2s_settings(C2SListenerConfig(port=http.port)),
            )
            await listener_http.start()
            self.http_listeners.append(listener_http)

    def _c2s_settings(self, listener: C2SListenerConfig) -> C2SSettings:
        general, auth = self.config.general, self.config.auth
        password = auth.password
        scram_hashes = (
            frozenset(_HASH_NAMES[h] for h in password.hash) if password.format == "scram" else None
        )
        return C2SSettings(
            hosts=frozenset(self.hosts),
            tls_mode=listener.tls.mode,
            max_stanza_size=listener.max_stanza_size or general.max_stanza_size,
            max_depth=listener.max_depth,
            state_timeout=listener.c2s_state_timeout / 1000,
            mechanisms=tuple(sasl_from_config(auth.sasl_mechanisms)),
            scram_hashes=scram_hashes,
            max_mailbox=general.max_fsm_queue,
            shaper_rule=listener.shaper,
            register_enabled="mod_register" in self.config.modules,
            language=general.language,
        )

    def access(self, rule: str, jid: Jid, ip: str) -> str | int:
        """Evaluate an access rule (`[access]`) for a user of one of our domains."""
        host = jid.domain if jid.domain in self.hosts else self.default_host
        settings = self._host_settings.get(host)
        if settings is None:
            settings = self._host_settings[host] = self.config.for_host(host)
        # Rules that give everyone the same value (the default c2s rule, max_user_sessions)
        # are evaluated once: a login asks two of them.
        key = (host, rule)
        constant = self._access_constants.get(key, _UNKNOWN)
        if constant is _UNKNOWN:
            constant = self._access_constants[key] = constant_value(
                settings.access, settings.acl, rule
            )
        if constant is not None:
            return constant  # type: ignore[return-value]
        value: str | int = match_rule(
            settings.access,
            settings.acl,
            rule,
            jid.local,
            jid.domain,
            ip,
            resource=jid.resource,
            host=host,
            hosted=self.hosts,
        )
        return value

    async def _user_exists(self, jid: Jid) -> bool:
        if self.accounts is None:
            return False
        return await self.accounts.exists(jid)

    # -- stop ---------------------------------------------------------------------------------
    async def stop(self, timeout: float = 10.0) -> None:
        """Close every stream with `system-shutdown`, store what is queued, release everything."""
        for c2s in self.c2s_listeners:
            c2s.stop_accepting()
        if self._c2s_node is not None:
            for session in list(self._c2s_node.live):
                session.shutdown()
        for c2s in self.c2s_listeners:
            await c2s.wait_closed(timeout)
        for http in self.http_listeners:
            await http.stop()
        self.c2s_listeners.clear()
        self.http_listeners.clear()
        if self.cluster is not None:
            await self.cluster.stop()
            self.cluster = None
        if self._module_manager is not None:
            await self._module_manager.stop()
            self._module_manager = None
        if self._tasks is not None:
            tasks, self._tasks = self._tasks, None
            await tasks.aclose()
        if self.stores is not None:
            await self.stores.close()
        if self.db is not None:
            await self.db.close()
            self.db = None
        log.info("node_stopped node=%s", self.node)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work owned by the node (cancelled by `stop`); a failure is logged,
        not allowed to take the node's other tasks down (re-raised in tests)."""
        if self._tasks is None:
            coro.close()
            return
        self._tasks.create_task(self._guarded(coro))

    async def _guarded(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception:
            if self.hooks.reraise:
                raise
            log.exception("node_task_failed node=%s", self.node)

    def request_stop(self) -> None:
        """Ask `run()` to stop (signal handlers call this)."""
        self._stop_requested.set()

    async def run(self, on_started: Callable[[Node], None] | None = None) -> None:
        """Start, serve until SIGTERM/SIGINT, stop."""
        import signal

        await self.start()
        tune_gc()
        if on_started is not None:
            on_started(self)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stop_requested.wait()
        finally:
            await self.stop()

    # -- for tests and admin --------------------------------------------------------------------
    @property
    def modules(self) -> list[str]:
        """Names of the running modules."""
        manager = self._module_manager
        return [] if manager is None else [m.name for m in manager.started]

    def c2s_port(self, index: int = 0) -> int:
        return self.c2s_listeners[index].bound_port
