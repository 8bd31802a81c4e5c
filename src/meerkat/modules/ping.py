"""XEP-0199 XMPP ping: answer pings, and ping clients that have been quiet for a while.

The server answers pings to itself and to users' bare JIDs. With ``send_pings``, each bound
session gets a watcher task: after ``ping_interval`` seconds without a stanza from the
client it sends ``<ping/>`` and waits ``ping_req_timeout`` seconds for any answer (result
or error); with ``timeout_action = "kill"`` an unanswered ping closes the session with
``connection-timeout``. The watchers belong to this module: they are cancelled when their
session closes and when the module stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.acc import Acc
from ..core.hooks import SM_REGISTER_CONNECTION, SM_REMOVE_CONNECTION, USER_SEND_PACKET
from ..core.iq import IqSpec
from ..core.modules import HookSpec, Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ..xmpp.jid import Jid
from ._common import doc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PingConfig:
    """`[modules.mod_ping]`."""

    send_pings: bool = field(default=True, metadata=doc("Ping clients that are quiet."))
    ping_interval: float = field(
        default=60.0, metadata=doc("Seconds of client silence before a ping.")
    )
    timeout_action: Literal["none", "kill"] = field(
        default="kill",
        metadata=doc(
            'What to do when a ping is not answered: "kill" closes the session (the server-side '
            'idle timeout; MongooseIM\'s default is "none"), "none" only logs.'
        ),
    )
    ping_req_timeout: float = field(
        default=32.0, metadata=doc("Seconds to wait for the answer to a ping.")
    )


@dataclass
class _Watch:
    jid: Jid
    last_activity: float
    task: asyncio.Task[None] | None = None


class PingModule(Module):
    """XEP-0199: pong, and keepalive pings to clients."""

    name = "mod_ping"
    Config = PingConfig

    def __init__(self, ctx: Any, config: PingConfig) -> None:
        super().__init__(ctx, config)
        self.config: PingConfig = config
        self._watches: dict[str, _Watch] = {}
        self._ids = itertools.count(1)

    def hooks(self) -> Iterable[HookSpec]:
        if not self.config.send_pings:
            return ()
        return (
            HookSpec(SM_REGISTER_CONNECTION, self.on_register),
            HookSpec(SM_REMOVE_CONNECTION, self.on_remove),
            HookSpec(USER_SEND_PACKET, self.on_user_send, priority=10),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.PING, self.pong, "local"), IqSpec(ns.PING, self.pong, "sm"))

    def features(self) -> Iterable[str]:
        return (ns.PING,)

    async def pong(self, acc: Acc, q: Element) -> Element | None:
        if acc.element.attrs.get("type") != "get":
            raise StanzaError("bad-request")
        return None

    async def stop(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            await _cancel(watch.task)

    # -- watchers ------------------------------------------------------------------------------
    async def on_register(self, acc: object, params: dict[str, Any]) -> object:
        sid: str = params["sid"]
        watch = _Watch(params["jid"], _now())
        self._watches[sid] = watch
        watch.task = self.ctx.spawn(self._watch(sid, watch), name=f"mod_ping {sid}")
        return None

    async def on_remove(self, acc: object, params: dict[str, Any]) -> object:
        watch = self._watches.pop(params["sid"], None)
        if watch is not None:
            await _cancel(watch.task)
        return None

    async def on_user_send(self, acc: Acc, params: dict[str, Any]) -> object:
        watch = self._watches.get(params["session"].sid)
        if watch is not None:
            watch.last_activity = _now()
        return None

    async def _watch(self, sid: str, watch: _Watch) -> None:
        # The watcher runs in the server's task group: an escaping exception would stop the
        # server, so a crash ends only this watcher.
        try:
            await self._watch_loop(sid, watch)
        except Exception:
            log.exception("ping_watcher_crashed", extra={"jid": str(watch.jid)})

    async def _watch_loop(self, sid: str, watch: _Watch) -> None:
        interval = self.config.ping_interval
        while True:
            idle = _now() - watch.last_activity
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            if not await self._ping(watch.jid) and self.config.timeout_action == "kill":
                self._kill(sid, watch.jid)
                return
            watch.last_activity = _now()

    async def _ping(self, jid: Jid) -> bool:
        """Send one ping; True when the client answered in time."""
        iq_id = f"mod_ping-{next(self._ids)}"
        reply = self.ctx.iq.expect_reply(iq_id)
        iq = Element(
            "iq", ns.CLIENT, {"type": "get", "id": iq_id, "from": jid.domain, "to": str(jid)}
        )
        iq.add("ping", ns.PING)
        try:
            await self.ctx.route(iq)
            await asyncio.wait_for(reply, self.config.ping_req_timeout)
        except TimeoutError:
            return False
        finally:
            reply.cancel()
        return True

    def _kill(self, sid: str, jid: Jid) -> None:
        self._watches.pop(sid, None)
        handle = self.ctx.sessions.local_handle(sid)
        if handle is not None:
            handle.kick("connection-timeout", "no answer to ping")


def _now() -> float:
    # Loop time, not the server clock: these deadlines are timers on this loop.
    return asyncio.get_running_loop().time()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    if task is asyncio.current_task():
        return  # a watcher that kills its session is removed from under itself
    with contextlib.suppress(asyncio.CancelledError):
        await task
