"""One SASL exchange on a c2s stream (RFC 6120 §6): mechanisms, credentials and results.

The pure mechanisms live in `meerkat.xmpp.sasl`; this adapter fetches credentials from the
account service (one store round trip for SCRAM) and turns outcomes into results the session
acts on. Unknown users get stable fake SCRAM credentials so that a failure looks the same
whether or not the account exists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ..db.errors import DatabaseError
from ..xmpp.jid import Jid, JidError, prep_local
from ..xmpp.sasl import SaslFailure, ScramServer, parse_plain
from ..xmpp.sasl.scram.server import mock_credentials


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    jid: Jid
    data: bytes | None


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
        channel_bindings: dict[str, bytes],
        plus_advertised: bool,
        mock_secret: bytes,
    ) -> None:
        self._accounts = accounts
        self._domain = domain
        self.mechanism = mechanism
        self._bindings = channel_bindings
        self._plus_advertised = plus_advertised
        self._mock_secret = mock_secret
        self._scram: ScramServer | None = None
        self._user: Jid | None = None

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
        except SaslFailure as exc:
            return Failure(str(exc.condition), exc.text or None)
        except DatabaseError:
            return Failure("temporary-auth-failure", "account database unavailable")
        return Failure("invalid-mechanism")

    async def respond(self, data: bytes) -> SaslOutcome:
        try:
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
        challenge = self._scram.server_first(creds, secrets.token_urlsafe(18))
        if self._user is None:
            self._user = Jid("", "")  # unknown user: the proof cannot match
        return Challenge(challenge)
