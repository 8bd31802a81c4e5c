"""An in-process server kernel with memory stores, and fake clients that act as the c2s would.

`Server` wires the real kernel (hooks that re-raise, IQ dispatcher, session manager, RFC 6121
router, module manager) with memory stores and real `Accounts` (plain passwords). A
`Client` is a bound session: `say` stamps ``from`` and runs USER_SEND_PACKET and
USER_SEND_<KIND> exactly like the c2s session, then routes what no module took; everything
delivered to it passes USER_RECEIVE_PACKET (as in the c2s) and lands in `inbox`. Tests read
like conversations::

    alice = await server.login("alice")
    await alice.say('<presence/>')
    assert_xml(bob.take(), ['<presence from="alice@localhost/res" to="bob@localhost"/>'])
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from meerkat.auth.accounts import Accounts
from meerkat.core import (
    Acc,
    HookRegistry,
    IqDispatcher,
    ManualClock,
    ModuleContext,
    ModuleManager,
    Router,
    SessionManager,
    SessionRecord,
)
from meerkat.core.hooks import (
    SM_REGISTER_CONNECTION,
    SM_REMOVE_CONNECTION,
    UNSET_PRESENCE,
    USER_RECEIVE_PACKET,
    USER_SEND_IQ,
    USER_SEND_MESSAGE,
    USER_SEND_PACKET,
    USER_SEND_PRESENCE,
)
from meerkat.core.tasks import TaskOwner
from meerkat.modules import MODULES
from meerkat.stores import Stores, memory_stores
from meerkat.xmpp.element import Element
from meerkat.xmpp.jid import Jid
from meerkat.xmpp.stream import parse_element

HOST = "localhost"
_SEND_HOOKS = {"message": USER_SEND_MESSAGE, "presence": USER_SEND_PRESENCE, "iq": USER_SEND_IQ}


class Server:
    """The kernel plus modules, in one process, with a manual clock."""

    def __init__(self, hosts: Sequence[str] = (HOST,)) -> None:
        self.hosts = tuple(hosts)
        self.clock = ManualClock(1_800_000_000.0)
        self.hooks = HookRegistry(reraise=True)
        self.iq = IqDispatcher()
        self.sessions = SessionManager("node1")
        self.stores: Stores = memory_stores()
        self.accounts = Accounts(
            self.stores.users, self.hosts, self.hooks, self.sessions, password_format="plain"
        )
        self.router = Router(
            self.hosts, self.sessions, self.iq, self.hooks, self.clock, self.accounts.exists
        )
        self.tasks = TaskOwner()
        self.ctx = ModuleContext(
            node="node1",
            hosts=self.hosts,
            default_host=self.hosts[0],
            clock=self.clock,
            hooks=self.hooks,
            iq=self.iq,
            router=self.router,
            sessions=self.sessions,
            stores=self.stores,
            accounts=self.accounts,
            tasks=self.tasks,  # type: ignore[arg-type]
        )
        self.manager = ModuleManager(self.ctx, MODULES)
        self.clients: list[Client] = []

    async def start(self, modules: Mapping[str, object]) -> None:
        await self.manager.start(modules)

    async def stop(self) -> None:
        await self.manager.stop()
        await self.tasks.aclose()

    async def register(self, user: str, password: str = "secret") -> Jid:
        return await self.accounts.register(Jid(user, self.hosts[0]), password)

    async def connect(self, user: str, resource: str = "res") -> Client:
        """A bound session (the account is created if needed), not yet available."""
        jid = Jid(user, self.hosts[0], resource)
        if not await self.accounts.exists(jid.bare):
            await self.register(user)
        client = Client(self, jid)
        await self.sessions.open(client.record, client)
        await self.hooks.run(
            SM_REGISTER_CONNECTION, jid.domain, None, {"session": client, "jid": jid,
                                                        "sid": client.sid},
        )  # fmt: skip
        self.clients.append(client)
        return client

    async def login(self, user: str, resource: str = "res") -> Client:
        """Connect, send initial presence, and forget what that brought."""
        client = await self.connect(user, resource)
        await client.say("<presence/>")
        client.take()
        return client

    async def route(self, xml: str) -> None:
        """Route a stanza as if a peer had sent it (``from`` and ``to`` set)."""
        await self.router.route_element(parse_element(xml))


class Client:
    """A fake c2s session: the `ClientSession` hooks see and the `SessionHandle` routes to."""

    def __init__(self, server: Server, jid: Jid) -> None:
        self.server = server
        self._jid = jid
        self._record = SessionRecord(
            sid=server.sessions.new_sid(server.clock.now()), jid=jid, node="node1"
        )
        self._presence: Element | None = None
        self._states: dict[str, dict[str, Any]] = {}
        self.inbox: list[Element] = []
        self.kicked: str | None = None
        self.close_request: str | None = None
        self.connected = True
        self.client_stanzas = 0
        """As `C2SSession.client_stanzas`: stanzas `say` ran USER_SEND_PACKET for."""

    # -- ClientSession -------------------------------------------------------------------------
    @property
    def jid(self) -> Jid:
        return self._jid

    @property
    def sid(self) -> str:
        return self._record.sid

    @property
    def host_type(self) -> str:
        return self._jid.domain

    @property
    def record(self) -> SessionRecord:
        return self._record

    @property
    def available(self) -> bool:
        return self._presence is not None

    @property
    def last_presence(self) -> Element | None:
        return self._presence

    @property
    def peer(self) -> tuple[str, int]:
        return ("127.0.0.1", 50000)

    def state(self, module: str) -> dict[str, Any]:
        return self._states.setdefault(module, {})

    state_of = state

    def send(self, element: Element) -> None:
        self.inbox.append(element.copy())

    def close(self, condition: str, text: str | None = None) -> None:
        self.close_request = condition

    async def set_presence(self, presence: Element | None) -> None:
        self._presence = presence
        priority = None
        if presence is not None:
            text = presence.find_text("priority")
            priority = int(text) if text else 0
        if self.connected:
            self._record = await self.server.sessions.update(self._record, priority=priority)

    # -- SessionHandle ---------------------------------------------------------------------------
    def deliver(self, acc: Acc) -> bool:
        if not self.connected:
            return False
        if not _run_now(self.server.hooks.run(USER_RECEIVE_PACKET, HOST, acc, {"session": self})):
            self.inbox.append(acc.element.copy())
        return True

    def kick(self, condition: str, text: str | None = None) -> None:
        self.kicked = condition

    # -- acting as the client ------------------------------------------------------------------
    async def say(self, xml: str | Element) -> None:
        """What the c2s does with a stanza from its client (RFC 6120 §8.1.2.1 stamping)."""
        el = parse_element(xml) if isinstance(xml, str) else xml
        el.attrs["from"] = str(self._jid)
        to = el.attrs.get("to")
        to_jid = self._jid.bare if to is None else Jid.parse(to)
        acc = Acc(el, self._jid, to_jid, host_type=HOST, timestamp=self.server.clock.now(),
                  origin_sid=self.sid)  # fmt: skip
        hooks = self.server.hooks
        params = {"session": self}
        self.client_stanzas += 1
        if await hooks.run(USER_SEND_PACKET, HOST, acc, params):
            return
        if await hooks.run(_SEND_HOOKS[el.name], HOST, acc, params):
            return
        if el.name == "presence" and to is None:
            await self.set_presence(el if "type" not in el.attrs else None)
            return
        await self.server.router.route(acc)

    async def disconnect(self, reason: str = "closed") -> None:
        """What the c2s does when the stream ends (see C2SSession._terminate)."""
        self.connected = False
        was_available = self._presence is not None
        await self.server.sessions.close(self._record)
        params = {"session": self, "jid": self._jid, "sid": self.sid, "reason": reason,
                  "was_available": was_available}  # fmt: skip
        if was_available:
            await self.server.hooks.run(UNSET_PRESENCE, HOST, None, params)
        await self.server.hooks.run(SM_REMOVE_CONNECTION, HOST, None, params)
        self._presence = None

    def take(self) -> list[Element]:
        """Everything received since the last take."""
        out, self.inbox = self.inbox, []
        return out

    async def iq(self, xml: str) -> Element:
        """Send an IQ and return the reply addressed to it."""
        el = parse_element(xml)
        el.attrs.setdefault("id", "q1")
        await self.say(el)
        for i, got in enumerate(self.inbox):
            if got.name == "iq" and got.attrs.get("id") == el.attrs["id"]:
                del self.inbox[i]
                return got
        raise AssertionError(f"no reply to {el}; inbox: {[str(x) for x in self.inbox]}")


def _run_now(hook_run: Coroutine[Any, Any, bool]) -> bool:
    """Run a hook chain that never waits (delivery is synchronous here); its STOP result.

    The c2s runs USER_RECEIVE_PACKET when it takes the stanza from its mailbox; the fake
    client has no mailbox, so it runs the chain at delivery, and a handler that would have to
    wait is a harness error."""
    try:
        hook_run.send(None)
    except StopIteration as done:
        return bool(done.value)
    hook_run.close()
    raise AssertionError("a USER_RECEIVE_PACKET handler waited; the kernel harness cannot")


def xml(el: Element) -> str:
    return el.to_string("jabber:client")


def canon(el: Element, ignore: Sequence[str] = ()) -> str:
    copy = el.copy()
    for attr in ignore:
        copy.attrs.pop(attr, None)
    copy.attrs = dict(sorted(copy.attrs.items()))
    return xml(_sorted_attrs(copy))


def _sorted_attrs(el: Element) -> Element:
    el.attrs = dict(sorted(el.attrs.items()))
    for child in el.elements():
        _sorted_attrs(child)
    return el


def assert_xml(got: Sequence[Element], expected: Sequence[str], ignore: Sequence[str] = ()) -> None:
    """The stanzas received are exactly these, in order (attribute order does not matter)."""
    want = [canon(parse_element(x), ignore) for x in expected]
    have = [canon(e, ignore) for e in got]
    assert have == want, "\n got: " + "\n      ".join(have) + "\nwant: " + "\n      ".join(want)


def assert_same(got: Element, expected: str, ignore: Sequence[str] = ()) -> None:
    assert_xml([got], [expected], ignore)


async def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll until ``condition()`` holds (for module timers); fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def payload(stanza: Element) -> Element:
    """The first child element of a stanza (an IQ's query)."""
    child = next(stanza.elements(), None)
    assert child is not None, f"no payload in {stanza}"
    return child
