"""mod_fast_auth_token: XEP-0484 FAST, login tokens issued during SASL2.

- SASL2_STREAM_FEATURES: ``<fast/>`` with the HT mechanisms this connection allows (only over
  TLS; ``-ENDP``/``-EXPR`` when that channel binding exists).
- SASL2_SUCCESS: ``<request-token mechanism/>`` gets a ``<token token expiry/>`` in
  ``<success/>``; a login with a token close to expiry (`rotate_before_expire`) gets a new one
  unprompted; ``<fast invalidate='true'/>`` revokes the client's tokens.
- FAST_AUTHENTICATE: checks an HT-* login against the client's tokens
  (`meerkat.auth.fast_tokens.FastTokens`).
- REMOVE_USER and PASSWORD_CHANGED revoke every token of the user.

Tokens are bound to the user, the client's SASL2 user-agent id and the mechanism requested;
only their SHA-256 is stored (`fast_auth_token` table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ..auth.fast_tokens import FastTokens, TokenAttempt, TokenResult
from ..core.hooks import (
    FAST_AUTHENTICATE,
    PASSWORD_CHANGED,
    REMOVE_USER,
    SASL2_STREAM_FEATURES,
    SASL2_SUCCESS,
    STOP,
)
from ..core.modules import HookSpec, Module
from ..stores.fast_tokens import FastTokenStore, MemoryFastTokenStore
from ..xmpp.element import Element
from ..xmpp.jid import Jid
from ..xmpp.sasl.ht import offered_ht_mechanisms
from ._common import doc

FAST = "urn:xmpp:fast:0"
KEY = "mod_fast_auth_token"
_UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


@dataclass(frozen=True)
class Period:
    """A duration as MongooseIM writes it: ``{value = 3, unit = "days"}``."""

    value: int = field(metadata=doc("How many units."))
    unit: Literal["days", "hours", "minutes", "seconds"] = field(metadata=doc("The unit."))

    @property
    def seconds(self) -> int:
        return self.value * _UNITS[self.unit]


@dataclass(frozen=True)
class ValidityConfig:
    """`[modules.mod_fast_auth_token.validity_period]`."""

    access: Period = field(
        default_factory=lambda: Period(3, "days"), metadata=doc("Lifetime of a token.")
    )
    rotate_before_expire: Period = field(
        default_factory=lambda: Period(6, "hours"),
        metadata=doc("A token used this close to its expiry is replaced by a new one."),
    )


@dataclass(frozen=True)
class FastAuthTokenConfig:
    """`[modules.mod_fast_auth_token]`."""

    backend: Literal["rdbms", "memory"] = field(
        default="rdbms", metadata=doc('Where tokens are kept: "rdbms" or "memory".')
    )
    validity_period: ValidityConfig = field(
        default_factory=ValidityConfig, metadata=doc("Token lifetimes.")
    )


class FastAuthTokenModule(Module):
    """XEP-0484: tokens for one-round-trip SASL2 logins."""

    name = "mod_fast_auth_token"
    Config = FastAuthTokenConfig

    def __init__(self, ctx: Any, config: FastAuthTokenConfig) -> None:
        super().__init__(ctx, config)
        self.config: FastAuthTokenConfig = config
        validity = config.validity_period
        self.tokens = FastTokens(
            self._store(),
            ctx.clock,
            validity=validity.access.seconds,
            rotate_before=validity.rotate_before_expire.seconds,
        )

    def _store(self) -> FastTokenStore:
        if self.config.backend == "memory":
            return MemoryFastTokenStore()
        store: FastTokenStore = self.ctx.stores.fast_tokens
        return store

    def hooks(self) -> Iterable[HookSpec]:
        return (
            HookSpec(SASL2_STREAM_FEATURES, self.on_sasl2_features),
            HookSpec(FAST_AUTHENTICATE, self.on_authenticate),
            HookSpec(SASL2_SUCCESS, self.on_sasl2_success),
            HookSpec(REMOVE_USER, self.on_user_gone),
            HookSpec(PASSWORD_CHANGED, self.on_user_gone),
        )

    async def on_sasl2_features(self, acc: list[Element], params: dict[str, Any]) -> object:
        if params.get("secure"):
            el = Element("fast", FAST)
            for mech in offered_ht_mechanisms(params.get("channel_bindings", ())):
                el.add("mechanism", text=mech)
            acc.append(el)
        return None

    async def on_authenticate(self, acc: TokenAttempt, params: dict[str, Any]) -> object:
        acc.result = await self.tokens.authenticate(acc)
        params["session"].state(KEY)["used"] = acc.result
        return STOP

    async def on_sasl2_success(self, acc: Element, params: dict[str, Any]) -> object:
        session = params["session"]
        used: TokenResult | None = session.state(KEY).pop("used", None)
        agent_id: str | None = params.get("user_agent_id")
        jid: Jid = params["jid"]
        if not agent_id:
            return None  # tokens are per client: no user-agent id, no token
        token_used: str | None = params.get("token_used")
        fast = acc.find("fast", FAST)
        request = acc.find("request-token", FAST)
        invalidate = fast is not None and fast.attrs.get("invalidate") in ("true", "1")
        if token_used and invalidate:
            await self.tokens.invalidate(jid, agent_id)
        mechanism: str | None = None
        if request is not None:
            wanted = request.attrs.get("mechanism", "")
            bindings = session.transport.channel_bindings()
            if wanted in offered_ht_mechanisms(bindings):
                mechanism = wanted
        elif token_used and not invalidate and used and self.tokens.due_for_rotation(used):
            mechanism = token_used
        if mechanism is not None:
            issued = await self.tokens.issue(jid, agent_id, mechanism)
            expiry = datetime.fromtimestamp(issued.expire, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["results"].append(
                Element("token", FAST, {"token": issued.token, "expiry": expiry})
            )
        return None

    async def on_user_gone(self, acc: object, params: dict[str, Any]) -> object:
        await self.tokens.remove_user(params["jid"].bare)
        return None


__all__ = ["FAST", "FastAuthTokenConfig", "FastAuthTokenModule", "Period", "ValidityConfig"]
