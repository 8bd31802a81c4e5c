"""Authentication of a c2s stream: SASL (RFC 6120 §6), SASL2 (XEP-0388) with Bind 2
(XEP-0386), FAST tokens (XEP-0484) and the channel-binding types (XEP-0440).

`Authenticator` drives the session's negotiation states for both SASL profiles; the session
hands it the elements of those states. SASL ends with a stream restart; SASL2 does not: its
``<success/>`` carries the results of the inline requests, then the stream features of the
authenticated stream follow at once. With Bind 2 inline, the session is established by the
time ``<success/>`` is written (so `authorization-identifier` is the full JID); the modules'
inline results (SM ``<enabled/>``, carbons, CSI) come from BIND2_ENABLE_FEATURES, and SM's
inline ``<resume/>`` and FAST's ``<request-token/>`` from SASL2_SUCCESS.

The hard part is ordering: an inline resumption re-sends unacknowledged stanzas, which must
follow ``<success/>``; the session holds every `send` request until it is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..auth.fast_tokens import TokenAttempt, TokenResult
from ..core.hooks import (
    BIND2_ENABLE_FEATURES,
    BIND2_STREAM_FEATURES,
    FAST_AUTHENTICATE,
    SASL2_STREAM_FEATURES,
    SASL2_SUCCESS,
)
from ..xmpp import ns
from ..xmpp.element import Element
from ..xmpp.errors import StreamError
from ..xmpp.jid import Jid
from ..xmpp.sasl.mechanisms import offered_channel_bindings, offered_mechanisms
from . import sasl2, stanzas
from .sasl import Challenge, Failure, SaslExchange, SaslOutcome, Success
from .states import State

if TYPE_CHECKING:
    from .session import C2SSession

MAX_FAILURES = 5
"""Authentication failures before the stream is closed (RFC 6120 allows 2 to 5)."""


class Authenticator:
    """SASL and SASL2 for one session."""

    __slots__ = ("_exchange", "_failures", "_request", "s")

    def __init__(self, session: C2SSession) -> None:
        self.s = session
        self._exchange: SaslExchange | None = None
        self._request: sasl2.Sasl2Request | None = None
        self._failures = 0

    # -- features -----------------------------------------------------------------------------
    def mechanisms(self) -> tuple[str, ...]:
        s = self.s
        return _offered(
            s.settings.mechanisms,
            s.transport.secure,
            tuple(s.transport.channel_bindings()),
            s.settings.scram_hashes,
        )

    async def pre_auth_features(self) -> list[Element]:
        s = self.s
        out: list[Element] = []
        if not s.transport.secure and s.transport.can_starttls:
            out.append(stanzas.starttls_feature(s.tls_required_missing()))
            if s.tls_required_missing():
                return out
        mechanisms = self.mechanisms()
        if mechanisms:
            out.append(stanzas.mechanisms_feature(mechanisms))
            if s.settings.sasl2:
                inline = await self._sasl2_inline()
                out.append(sasl2.authentication_feature(mechanisms, inline))
            bindings = offered_channel_bindings(s.transport.channel_bindings())
            if bindings:
                out.append(sasl2.channel_binding_feature(bindings))
        if s.settings.register_enabled:
            out.append(Element("register", ns.REGISTER_FEATURE))
        return out

    async def _sasl2_inline(self) -> list[Element]:
        s = self.s
        hooks = s.node.hooks
        features: list[Element] = []
        await hooks.run(BIND2_STREAM_FEATURES, s.host, features, {"session": s})
        inline = [sasl2.bind2_feature(features)]
        params = {
            "session": s,
            "secure": s.transport.secure,
            "channel_bindings": list(s.transport.channel_bindings()),
        }
        await hooks.run(SASL2_STREAM_FEATURES, s.host, inline, params)
        return inline

    # -- SASL (RFC 6120) ----------------------------------------------------------------------
    async def sasl_auth(self, el: Element) -> None:
        mechanism = el.attrs.get("mechanism", "")
        if mechanism not in self.mechanisms():
            self.s.write(stanzas.sasl_failure("invalid-mechanism"))
            return
        text = el.text
        initial = None if not text.strip() else stanzas.decode_sasl_payload(text)
        if text.strip() and initial is None:
            self.s.write(stanzas.sasl_failure("incorrect-encoding"))
            return
        self._request = None
        self._exchange = self._new_exchange(mechanism, None)
        await self._outcome(await self._exchange.start(initial))

    async def sasl_response(self, el: Element) -> None:
        await self._response(el, ns.SASL, stanzas.decode_sasl_payload)

    async def _response(
        self, el: Element, xmlns: str, decode: Callable[[str], bytes | None]
    ) -> None:
        """A client's answer to a challenge: <response/> or <abort/> in the profile's namespace
        (XEP-0388 allows nothing else during a SASL2 exchange either)."""
        if el.xmlns == xmlns and el.name == "abort":
            self._abandon("aborted")
            return
        if el.xmlns != xmlns or el.name != "response" or self._exchange is None:
            profile = "SASL2" if xmlns == ns.SASL2 else "SASL"
            raise StreamError("not-authorized", f"expected a {profile} response")
        data = decode(el.text)
        if data is None:
            self._abandon("incorrect-encoding")
            return
        await self._outcome(await self._exchange.respond(data))

    def abort(self, el: Element) -> None:
        """An ``<abort/>`` with no exchange under way."""
        failure = sasl2.failure if el.xmlns == ns.SASL2 else stanzas.sasl_failure
        self.s.write(failure("aborted"))

    def _abandon(self, condition: str) -> None:
        self._exchange = None
        self.s.fsm = State.WAIT_FOR_FEATURE_BEFORE_AUTH
        if self._request is not None:
            self._request = None
            self.s.write(sasl2.failure(condition))
        else:
            self.s.write(stanzas.sasl_failure(condition))

    # -- SASL2 (XEP-0388) ---------------------------------------------------------------------
    async def sasl2_authenticate(self, el: Element) -> None:
        s = self.s
        if not s.settings.sasl2:
            raise StreamError("unsupported-stanza-type", "SASL2 is not offered here")
        request = sasl2.parse_authenticate(el)
        self._request = request
        if request.bad_encoding:
            self._abandon("incorrect-encoding")
            return
        mechanism = request.mechanism
        fast = s.transport.secure and mechanism.startswith("HT-")
        if mechanism not in self.mechanisms() and not fast:
            self._abandon("invalid-mechanism")
            return
        self._exchange = self._new_exchange(mechanism, request.user_agent_id)
        await self._outcome(await self._exchange.start(request.initial_response))

    async def sasl2_response(self, el: Element) -> None:
        await self._response(el, ns.SASL2, sasl2.decode_payload)

    def _new_exchange(self, mechanism: str, user_agent_id: str | None) -> SaslExchange:
        s = self.s
        return SaslExchange(
            s.node.accounts,
            s.host,
            mechanism,
            s.transport.channel_bindings(),
            any(m.endswith("-PLUS") for m in self.mechanisms()),
            s.node.mock_secret,
            verify_token=self._verify_token if s.transport.secure else None,
            user_agent_id=user_agent_id,
            random=s.node.random,
        )

    async def _verify_token(self, attempt: TokenAttempt) -> TokenResult | None:
        s = self.s
        if not await s.node.hooks.run(FAST_AUTHENTICATE, s.host, attempt, {"session": s}):
            return None
        return attempt.result

    # -- outcomes -----------------------------------------------------------------------------
    async def _outcome(self, outcome: SaslOutcome) -> None:
        s = self.s
        address = s.transport.peer[0]
        profile2 = self._request is not None
        if isinstance(outcome, Challenge):
            if profile2:
                s.write(sasl2.challenge(outcome.data))
                s.fsm = State.WAIT_FOR_SASL2_RESPONSE
            else:
                s.write(stanzas.sasl_data("challenge", outcome.data))
                s.fsm = State.WAIT_FOR_SASL_RESPONSE
            return
        self._exchange = None
        throttle = s.node.throttle
        if isinstance(outcome, Success) and s.node.access("c2s", outcome.jid, address) != "allow":
            outcome = Failure("not-authorized", "access denied")
        if isinstance(outcome, Success):
            throttle.succeeded(address)
            s.authenticated_as(outcome.jid)
            if profile2:
                await self._sasl2_success(outcome)
            else:
                s.write(stanzas.sasl_data("success", outcome.data))
                s.restart_stream()
            return
        if outcome.condition != "temporary-auth-failure":
            # Our own outage is no reason to slow down (everyone behind) that address.
            delay = throttle.delay(address, s.node.clock.monotonic())
            throttle.failed(address, s.node.clock.monotonic())
            if delay:
                await asyncio.sleep(delay)
        self._failures += 1
        request, self._request = self._request, None
        if request is not None:
            s.write(sasl2.failure(outcome.condition, outcome.text))
        else:
            s.write(stanzas.sasl_failure(outcome.condition, outcome.text))
        s.fsm = State.WAIT_FOR_FEATURE_BEFORE_AUTH
        if self._failures >= MAX_FAILURES:
            raise StreamError("policy-violation", "too many authentication failures")

    async def _sasl2_success(self, outcome: Success) -> None:
        """Inline requests, then ``<success/>``, the new features, and what was held."""
        s = self.s
        request, self._request = self._request, None
        assert request is not None
        s.user_agent_id = request.user_agent_id
        results: list[Element] = []
        params: dict[str, Any] = {
            "session": s,
            "jid": outcome.jid,
            "mechanism": request.mechanism,
            "results": results,
            "user_agent_id": request.user_agent_id,
            "token_used": outcome.token_mechanism,
        }
        s.hold_requests(True)
        try:
            await s.node.hooks.run(SASL2_SUCCESS, s.host, request.element, params)
            if not s.bound and request.bind is not None:
                results.append(await self._bind2(outcome.jid, request))
            identifier = str(s.jid) if s.bound else str(outcome.jid.bare)
            s.write(sasl2.success(outcome.data, identifier, results))
            if not s.bound:
                s.fsm = State.WAIT_FOR_FEATURE_AFTER_AUTH  # no stream restart in SASL2
            s.write(stanzas.features(await s.post_auth_features()))
        finally:
            s.hold_requests(False)

    async def _bind2(self, jid: Jid, request: sasl2.Sasl2Request) -> Element:
        """XEP-0386: bind a resource derived from the tag and user-agent, enable inline."""
        s = self.s
        bind = request.bind
        assert bind is not None
        tag = bind.find_text("tag", ns.BIND2)
        fallback = s.node.random(8).hex()
        resource = sasl2.bind2_resource(jid.bare, tag, request.user_agent_id, fallback)
        await s.open_session(jid.bare.with_resource(resource))
        results: list[Element] = []
        await s.node.hooks.run(
            BIND2_ENABLE_FEATURES, s.host, bind, {"session": s, "results": results}
        )
        return sasl2.bound(results)


# The mechanisms offered depend only on these values, which a node has a handful of
# combinations of: computed once each, not twice per login.
@lru_cache(maxsize=64)
def _offered(
    configured: tuple[str, ...],
    tls: bool,
    bindings: tuple[str, ...],
    scram_hashes: frozenset[str] | None,
) -> tuple[str, ...]:
    return tuple(
        offered_mechanisms(
            configured, tls=tls, channel_bindings=bindings, scram_hashes=scram_hashes
        )
    )
