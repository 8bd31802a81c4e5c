"""One SASL exchange on a c2s stream (RFC 6120 §6, XEP-0388): mechanisms, credentials, results.

The pure mechanisms live in `meerkat.xmpp.sasl`; this adapter fetches credentials from the
account service (one store round trip for SCRAM) and turns outcomes into results the session
acts on. Unknown users get stable fake SCRAM credentials so that a failure looks the same
whether or not the account exists. The FAST token mechanisms (HT-*, XEP-0484) are checked by
whoever the session's `verify_token` asks (the `fast_authenticate` hook).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..auth.fast_tokens import TokenAttempt, TokenResult
from ..db.errors import DatabaseError
from ..xmpp.jid import Jid, JidError, prep_local
from ..xmpp.sasl import SaslFailure, ScramServer, parse_plain
from ..xmpp.sasl.ht import HT_MECHANISMS, binding_type, parse_initial
from ..xmpp.sasl.scram.server import mock_credentials

TokenVerifier = Callable[[TokenAttempt], Awaitable[TokenResult | None]]
"""Checks an HT proof; None when nobody can (FAST is not enabled)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    jid: Jid
    data: bytes | None
    token_mechanism: str | None = None
    """The HT mechanism when a FAST token was used."""


@dataclass(frozen=True, slots=True)
class Failure:
    condition: str
    text: str | None = None


SaslOutcome = Challenge | Success | Failure


class SaslExchange:
    """The server side of one authentication attempt for ``domain``."""

    def __init__(
        self,
        accounts: Any,
        domain: str,
        mechanism: str,
        channel_bindings: Mapping[str, bytes],
        plus_advertised: bool,
        mock_secret: bytes,
        *,
        verify_token: TokenVerifier | None = None,
        user_agent_id: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._accounts = accounts
        self._domain = domain
        self.mechanism = mechanism
        self._bindings = channel_bindings
        self._plus_advertised = plus_advertised
        self._mock_secret = mock_secret
        self._scram: ScramServer | None = None
        self._user: Jid | None = None
        self._verify_token = verify_token
        self._user_agent_id = user_agent_id
        self._random = random

    async def start(self, initial: bytes | None) -> SaslOutcome:
        try:
            if self.mechanism == "PLAIN":
                if initial is None:
                    return Challenge(b"")
                return await self._plain(initial)
            if self.mechanism.startswith("SCRAM-"):
                self._scram = ScramServer(
                    self.mechanism,
                    channel_bindings=self._bindings,
                    plus_advertised=self._plus_advertised,
                )
                if initial is None:
                    return Challenge(b"")
                return await self._scram_first(initial)
            if self.mechanism in HT_MECHANISMS and self._verify_token is not None:
                return await self._hashed_token(initial)
        except SaslFailure as exc:
            return Failure(str(exc.condition), exc.text or None)
        except DatabaseError:
            return Failure("temporary-auth-failure", "account database unavailable")
        return Failure("invalid-mechanism")

    async def respond(self, data: bytes) -> SaslOutcome:
        try:
            if self.mechanism in HT_MECHANISMS:
                return Failure("malformed-request", "HT mechanisms take no response")
            if self.mechanism == "PLAIN":
                return await self._plain(data)
            assert self._scram is not None
            if self._user is None:
                return await self._scram_first(data)
            final = self._scram.receive_client_final(data)
            return Success(self._user, final)
        except SaslFailure as exc:
            return Failure(str(exc.condition), exc.text or None)
        except DatabaseError:
            return Failure("temporary-auth-failure", "account database unavailable")

    def _jid(self, username: str) -> Jid | None:
        try:
            return Jid(prep_local(username), self._domain)
        except JidError:
            return None

    async def _plain(self, data: bytes) -> SaslOutcome:
        creds = parse_plain(data)
        jid = self._jid(creds.authcid)
        if jid is None:
            return Failure("not-authorized")
        if creds.authzid and creds.authzid not in (creds.authcid, str(jid)):
            return Failure("invalid-authzid")
        if not await self._accounts.check_password(jid, creds.password):
            return Failure("not-authorized")
        return Success(jid, None)

    async def _scram_first(self, data: bytes) -> SaslOutcome:
        assert self._scram is not None
        first = self._scram.receive_client_first(data)
        jid = self._jid(first.username)
        if (
            first.authzid
            and jid is not None
            and first.authzid
            not in (
                first.username,
                str(jid),
            )
        ):
            return Failure("invalid-authzid")
        creds = None
        if jid is not None:
            creds = await self._accounts.get_scram_credentials(jid, self._scram.hash.name)
        if creds is None:
            creds = mock_credentials(self._scram.hash, first.username, self._mock_secret, 4096)
        else:
            self._user = jid
        # As secrets.token_urlsafe(18): 24 URL-safe base64 characters (no padding).
        nonce = base64.urlsafe_b64encode(self._random(18)).decode()
        challenge = self._scram.server_first(creds, nonce)
        if self._user is None:
            self._user = Jid("", "")  # unknown user: the proof cannot match
        return Challenge(challenge)

    async def _hashed_token(self, initial: bytes | None) -> SaslOutcome:
        """HT-*: one message, checked against the user's FAST tokens."""
        assert self._verify_token is not None
        if initial is None:
            return Failure("malformed-request", "HT mechanisms need an initial response")
        message = parse_initial(initial)
        jid = self._jid(message.authcid)
        if jid is None:
            return Failure("not-authorized")
        cb_type = binding_type(self.mechanism)
        if cb_type is not None and cb_type not in self._bindings:
            return Failure("invalid-mechanism", f"{cb_type} is not available here")
        attempt = TokenAttempt(
            user=jid,
            mechanism=self.mechanism,
            initiator_hash=message.initiator_hash,
            cb_data=self._bindings[cb_type] if cb_type is not None else b"",
            user_agent_id=self._user_agent_id,
        )
        result = await self._verify_token(attempt)
        if result is None:
            return Failure("invalid-mechanism")
        if not result.ok:
            return Failure(result.condition)
        return Success(jid, result.responder, token_mechanism=self.mechanism)
