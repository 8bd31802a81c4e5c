"""XEP-0199 XMPP ping: answer pings, and ping clients that have been quiet for a while.

The server answers pings to itself and to users' bare JIDs. With ``send_pings``, every
bound session is watched: after ``ping_interval`` seconds without a stanza from the client
it gets ``<ping/>``, and any answer (result or error) within ``ping_req_timeout`` seconds
keeps it; with ``timeout_action = "kill"`` an unanswered ping closes the session with
``connection-timeout``. One sweeper task checks every watched session a few times per
period (a quarter of the shorter of the two, at least every `MAX_TICK` seconds), so an idle
connection costs a small record, not a task and a timer; deadlines are met within one tick.

Activity is read, not pushed: the sweeper compares each session's `client_stanzas` counter
with the value it saw on its previous look, so the client's stanzas cost this module nothing
(a USER_SEND_PACKET handler on every stanza was 1-7 % of a message's CPU, issue 6). A client
is therefore pinged `ping_interval` seconds after the first sweep that saw its last stanza,
i.e. up to one tick later than the stanza itself.
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
from ..core.hooks import SM_REGISTER_CONNECTION, SM_REMOVE_CONNECTION
from ..core.iq import IqSpec
from ..core.modules import HookSpec, Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ..xmpp.jid import Jid
from ._common import doc

log = logging.getLogger(__name__)

MIN_TICK, MAX_TICK = 0.01, 5.0
"""Bounds of the sweeper's period, in seconds."""


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


@dataclass(slots=True)
class _Watch:
    jid: Jid
    last_activity: float
    session: object
    """The session whose `client_stanzas` was `seen` (a resumption swaps it, same sid)."""
    seen: int
    reply: asyncio.Future[Element] | None = None
    """The answer to the ping in flight, if one is."""
    pinged_at: float = 0.0


class PingModule(Module):
    """XEP-0199: pong, and keepalive pings to clients."""

    name = "mod_ping"
    Config = PingConfig

    def __init__(self, ctx: Any, config: PingConfig) -> None:
        super().__init__(ctx, config)
        self.config: PingConfig = config
        self._watches: dict[str, _Watch] = {}
        self._ids = itertools.count(1)
        self._sweeper: asyncio.Task[None] | None = None

    def hooks(self) -> Iterable[HookSpec]:
        if not self.config.send_pings:
            return ()
        return (
            HookSpec(SM_REGISTER_CONNECTION, self.on_register),
            HookSpec(SM_REMOVE_CONNECTION, self.on_remove),
        )

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.PING, self.pong, "local"), IqSpec(ns.PING, self.pong, "sm"))

    def features(self) -> Iterable[str]:
        return (ns.PING,)

    async def pong(self, acc: Acc, q: Element) -> Element | None:
        if acc.element.attrs.get("type") != "get":
            raise StanzaError("bad-request")
        return None

    async def start(self) -> None:
        if self.config.send_pings:
            shortest = min(self.config.ping_interval, self.config.ping_req_timeout)
            tick = min(max(shortest / 4, MIN_TICK), MAX_TICK)
            self._sweeper = self.ctx.spawn(self._sweep_forever(tick), name="mod_ping sweeper")

    async def stop(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            if watch.reply is not None:
                watch.reply.cancel()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    # -- watching ------------------------------------------------------------------------------
    async def on_register(self, acc: object, params: dict[str, Any]) -> object:
        session = params["session"]
        self._watches[params["sid"]] = _Watch(params["jid"], _now(), session, _stanzas(session))
        return None

    async def on_remove(self, acc: object, params: dict[str, Any]) -> object:
        watch = self._watches.pop(params["sid"], None)
        if watch is not None and watch.reply is not None:
            watch.reply.cancel()
        return None

    async def _sweep_forever(self, tick: float) -> None:
        # The sweeper runs in the server's task group: an escaping exception would stop the
        # server, so a failed sweep is logged and the next one runs.
        while True:
            await asyncio.sleep(tick)
            try:
                await self._sweep()
            except Exception:
                log.exception("ping_sweep_failed")

    async def _sweep(self) -> None:
        """Ping who has been quiet for `ping_interval`; act on pings unanswered in time."""
        now = _now()
        interval, timeout = self.config.ping_interval, self.config.ping_req_timeout
        for sid, watch in list(self._watches.items()):
            if self._active(sid, watch):
                watch.last_activity = now
            reply = watch.reply
            if reply is not None:
                if reply.done():
                    watch.reply = None
                    watch.last_activity = now
                elif now - watch.pinged_at >= timeout:
                    reply.cancel()
                    watch.reply = None
                    watch.last_activity = now
                    if self.config.timeout_action == "kill":
                        self._kill(sid, watch.jid)
            elif now - watch.last_activity >= interval and self._watches.get(sid) is watch:
                watch.reply = await self._ping(watch.jid)
                watch.pinged_at = now

    def _active(self, sid: str, watch: _Watch) -> bool:
        """Whether the client sent a stanza since the previous look (and remember this one)."""
        # A resumption on this node replaces the sid's session: read the current one.
        session = self.ctx.sessions.local_handle(sid) or watch.session
        count = _stanzas(session)
        if session is watch.session and count == watch.seen:
            return False
        watch.session, watch.seen = session, count
        return True

    async def _ping(self, jid: Jid) -> asyncio.Future[Element]:
        """Send one ping; the future its answer completes."""
        iq_id = f"mod_ping-{next(self._ids)}"
        reply = self.ctx.iq.expect_reply(iq_id)
        iq = Element(
            "iq", ns.CLIENT, {"type": "get", "id": iq_id, "from": jid.domain, "to": str(jid)}
        )
        iq.add("ping", ns.PING)
        try:
            await self.ctx.route(iq)
        except BaseException:
            reply.cancel()
            raise
        return reply

    def _kill(self, sid: str, jid: Jid) -> None:
        self._watches.pop(sid, None)
        handle = self.ctx.sessions.local_handle(sid)
        if handle is not None:
            handle.kick("connection-timeout", "no answer to ping")


def _stanzas(session: object) -> int:
    """The session's `ClientSession.client_stanzas` (0 for a handle that does not count)."""
    count = getattr(session, "client_stanzas", 0)
    return count if isinstance(count, int) else 0


def _now() -> float:
    # Loop time, not the server clock: these deadlines are timers on this loop.
    return asyncio.get_running_loop().time()
