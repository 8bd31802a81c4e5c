"""XEP-0077 in-band registration: create an account, change its password, cancel it.

Before authentication the c2s hands ``jabber:iq:register`` IQs to the local IQ handler with
``acc.scratch["preauth"] = True`` and the client's address in ``acc.scratch["peer_ip"]``
(and offers the ``<register/>`` stream feature when registration is enabled). A new
account needs the ``access`` rule to allow it and, per IP address, at most one
registration every ``registration_watchdog_timeout`` seconds (``resource-constraint``
otherwise). After authentication the user may change the password or remove the account
(``<remove/>``), for their own account only. Off unless configured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..auth.accounts import AccountError, AccountExists
from ..core.acc import Acc
from ..core.iq import IqSpec, iq_result
from ..core.modules import Module
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StanzaError
from ..xmpp.jid import Jid, JidError
from ._common import doc

INSTRUCTIONS = "Choose a username and password for use with this service."


@dataclass(frozen=True)
class RegisterConfig:
    """`[modules.mod_register]`."""

    access: str = field(default="register", metadata=doc("Access rule deciding who may register."))
    registration_watchdog_timeout: int = field(
        default=600, metadata=doc("Seconds between two registrations from one IP address.")
    )
    password_min_length: int = field(
        default=0, metadata=doc("Shortest password accepted (0: any non-empty one).")
    )


class RegisterModule(Module):
    """XEP-0077: ``jabber:iq:register``."""

    name = "mod_register"
    Config = RegisterConfig

    def __init__(self, ctx: Any, config: RegisterConfig) -> None:
        super().__init__(ctx, config)
        self.config: RegisterConfig = config
        self._last_by_ip: dict[str, float] = {}

    def iq_handlers(self) -> Iterable[IqSpec]:
        return (IqSpec(ns.REGISTER, self.handle, "local"), IqSpec(ns.REGISTER, self.handle, "sm"))

    def features(self) -> Iterable[str]:
        return (ns.REGISTER,)

    async def handle(self, acc: Acc, q: Element) -> Element | None:
        user = None if acc.scratch.get("preauth") or not acc.from_jid.local else acc.from_jid.bare
        if acc.to_jid.local and acc.to_jid.bare != user:
            raise StanzaError("forbidden", text="not your account")
        if acc.element.attrs.get("type") == "get":
            return _form(user)
        if user is None:
            await self._register(acc, q)
        elif q.find("remove") is not None:
            # §3.2: the result reaches the client before its session is closed; the reply the
            # dispatcher then builds finds no session and is dropped.
            reply = iq_result(acc.element)
            reply.attrs["from"], reply.attrs["to"] = str(acc.to_jid), str(acc.from_jid)
            await self.ctx.route(reply)
            await self.ctx.accounts.remove(user)
        else:
            await self._change_password(user, q)
        return None

    async def _register(self, acc: Acc, q: Element) -> None:
        if q.find("remove") is not None:
            raise StanzaError("not-allowed", text="authenticate to remove an account")
        username, password = q.find_text("username"), q.find_text("password")
        if not username or not password:
            raise StanzaError("not-acceptable", text="username and password are required")
        self._check_password(password)
        try:
            jid = Jid.make(username, acc.to_jid.domain)
        except JidError:
            raise StanzaError("jid-malformed") from None
        ip = str(acc.scratch.get("peer_ip", ""))
        if not self._access_allows(jid, ip):
            raise StanzaError("not-allowed", text="registration is not allowed")
        now = self.ctx.clock.monotonic()
        self._forget_old(now)
        if ip and ip in self._last_by_ip:
            raise StanzaError("resource-constraint", text="registering accounts too quickly")
        try:
            await self.ctx.accounts.register(jid, password)
        except AccountExists:
            raise StanzaError("conflict") from None
        except AccountError as exc:
            condition = "jid-malformed" if exc.reason == "invalid_jid" else "not-acceptable"
            raise StanzaError(condition, text=str(exc)) from None
        if ip:
            self._last_by_ip[ip] = now

    async def _change_password(self, user: Jid, q: Element) -> None:
        username, password = q.find_text("username"), q.find_text("password")
        if not password:
            raise StanzaError("bad-request", text="password is required")
        if username is not None and username != user.local:
            try:
                same = Jid.make(username, user.domain) == user
            except JidError:
                same = False
            if not same:
                raise StanzaError("not-allowed", text="not your account")
        self._check_password(password)
        if not await self.ctx.accounts.set_password(user, password):
            raise StanzaError("not-acceptable")

    def _check_password(self, password: str) -> None:
        if len(password) < self.config.password_min_length:
            raise StanzaError("not-acceptable", text="password too short")

    def _access_allows(self, jid: Jid, ip: str) -> bool:
        """The ``access`` rule, when the server gives modules an access checker.

        TODO: `ModuleContext` has no access-rule evaluation yet; until it has, enabling the
        module allows registration (with the IP rate limit).
        """
        check = getattr(self.ctx, "check_access", None)
        if check is None:
            return True
        return bool(check(self.config.access, jid, ip) == "allow")

    def _forget_old(self, now: float) -> None:
        horizon = now - self.config.registration_watchdog_timeout
        for ip, at in list(self._last_by_ip.items()):
            if at <= horizon:
                del self._last_by_ip[ip]


def _form(user: Jid | None) -> Element:
    q = Element("query", ns.REGISTER)
    if user is not None:
        q.add("registered")
        q.add("username", text=user.local)
        q.add("password")
        return q
    q.add("instructions", text=INSTRUCTIONS)
    q.add("username")
    q.add("password")
    return q
