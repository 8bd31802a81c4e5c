"""Server side of SCRAM and SCRAM-PLUS (RFC 5802, RFC 7677) as an explicit state machine.

    CLIENT_FIRST --receive_client_first--> CREDENTIALS   (caller looks the user up)
    CREDENTIALS  --server_first----------> CLIENT_FINAL  (send the returned challenge)
    CLIENT_FINAL --receive_client_final--> SUCCESS       (send the returned `v=` as <success/>)
    any state    --bad input-------------> FAILED        (SaslFailure raised, machine is dead)

The machine is given, at construction, the channel-binding data of the connection (see
`channel_binding.available_channel_bindings`) and whether -PLUS mechanisms were advertised.
The hard parts:

- Downgrade protection (RFC 5802 §6): a client answering `y` ("I support binding, you don't seem
  to") while the server did advertise -PLUS means someone stripped the -PLUS offer: fail.
- A -PLUS mechanism requires `p=<type>` with a type this connection has; a plain mechanism must
  not carry `p=`.
- The `c=` check compares the exact GS2 header bytes plus the binding data, constant time.
- The nonce in client-final must be exactly client nonce + server nonce.

The server nonce and credentials come from the caller: no randomness, clock or I/O here. For an
unknown user, run the exchange with `mock_credentials` so the failure looks like a wrong password.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto

from ..errors import SaslCondition, SaslFailure
from . import crypto
from .crypto import ScramCredentials, ScramHash
from .messages import (
    ClientFirst,
    format_server_final,
    format_server_first,
    is_valid_nonce,
    parse_client_final,
    parse_client_first,
)

__all__ = ["ScramResult", "ScramServer", "ScramServerState", "mock_credentials", "parse_mechanism"]


class ScramServerState(Enum):
    """Where the server is in the exchange (RFC 5802 §5)."""

    CLIENT_FIRST = auto()
    CREDENTIALS = auto()
    CLIENT_FINAL = auto()
    SUCCESS = auto()
    FAILED = auto()


@dataclass(frozen=True, slots=True)
class ScramResult:
    """Who authenticated: the SCRAM username (authcid), the requested authzid, the binding used."""

    authcid: str
    authzid: str | None
    channel_binding: str | None


def parse_mechanism(mechanism: str) -> tuple[ScramHash, bool]:
    """("SCRAM-SHA-256-PLUS") -> (SHA256, True); SaslFailure(invalid-mechanism) otherwise."""
    plus = mechanism.endswith("-PLUS")
    base = mechanism.removesuffix("-PLUS")
    if base.startswith("SCRAM-") and base[len("SCRAM-") :] in crypto.HASHES:
        return crypto.HASHES[base[len("SCRAM-") :]], plus
    raise SaslFailure(SaslCondition.INVALID_MECHANISM, f"not a SCRAM mechanism: {mechanism}")


def mock_credentials(
    h: ScramHash, username: str, secret: bytes, iterations: int
) -> ScramCredentials:
    """Stable fake credentials for an unknown user: same salt every time, matches no password."""
    salt = crypto.server_signature(h, secret, b"salt:" + username.encode())[:16]
    key = crypto.server_signature(h, secret, b"key:" + username.encode())
    return ScramCredentials(salt=salt, iterations=iterations, stored_key=key, server_key=key)


class ScramServer:
    """One SCRAM exchange, server side."""

    def __init__(
        self,
        mechanism: str,
        *,
        channel_bindings: Mapping[str, bytes] | None = None,
        plus_advertised: bool | None = None,
    ) -> None:
        """`channel_bindings`: type -> data available on this connection (empty without TLS).
        `plus_advertised`: whether any -PLUS mechanism was offered (default: bindings exist)."""
        self.hash, self.plus = parse_mechanism(mechanism)
        self.mechanism = mechanism
        self._bindings = dict(channel_bindings or {})
        self._plus_advertised = bool(self._bindings) if plus_advertised is None else plus_advertised
        if self.plus and not self._bindings:
            raise SaslFailure(SaslCondition.INVALID_MECHANISM, "no channel binding available")
        self.state = ScramServerState.CLIENT_FIRST
        self._first: ClientFirst | None = None
        self._credentials: ScramCredentials | None = None
        self._server_first = b""
        self._nonce = ""
        self.result: ScramResult | None = None

    def receive_client_first(self, message: bytes) -> ClientFirst:
        """Parse and check the initial response; then look up `.username` and call server_first."""
        self._expect(ScramServerState.CLIENT_FIRST)
        try:
            first = parse_client_first(message)
            self._check_binding_flag(first)
        except SaslFailure:
            self.state = ScramServerState.FAILED
            raise
        self._first = first
        self.state = ScramServerState.CREDENTIALS
        return first

    def server_first(self, credentials: ScramCredentials, server_nonce: str) -> bytes:
        """The challenge, given the user's stored credentials and a fresh random nonce."""
        if self.state is not ScramServerState.CREDENTIALS or self._first is None:
            raise RuntimeError(f"server_first called in state {self.state.name}")
        if not is_valid_nonce(server_nonce):
            raise ValueError("server nonce must be printable ASCII without ','")
        self._credentials = credentials
        self._nonce = self._first.nonce + server_nonce
        self._server_first = format_server_first(
            self._nonce, credentials.salt, credentials.iterations
        )
        self.state = ScramServerState.CLIENT_FINAL
        return self._server_first

    def receive_client_final(self, message: bytes) -> bytes:
        """Verify the client's proof; return the server-final message (`v=...`) for <success/>."""
        self._expect(ScramServerState.CLIENT_FINAL)
        try:
            result = self._verify(message)
        except SaslFailure:
            self.state = ScramServerState.FAILED
            raise
        self.state = ScramServerState.SUCCESS
        return result

    def _expect(self, state: ScramServerState) -> None:
        if self.state is not state:
            self.state = ScramServerState.FAILED
            raise SaslFailure(SaslCondition.MALFORMED_REQUEST, "unexpected SCRAM message")

    def _check_binding_flag(self, first: ClientFirst) -> None:
        if self.plus:
            if first.cb_flag != "p":
                raise SaslFailure(
                    SaslCondition.MALFORMED_REQUEST, "-PLUS mechanism requires channel binding"
                )
            if first.cb_name not in self._bindings:
                raise SaslFailure(
                    SaslCondition.MALFORMED_REQUEST,
                    f"unsupported channel binding type {first.cb_name}",
                )
        elif first.cb_flag == "p":
            raise SaslFailure(
                SaslCondition.MALFORMED_REQUEST,
                "channel binding requested with a non-PLUS mechanism",
            )
        elif first.cb_flag == "y" and self._plus_advertised:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "channel binding downgrade detected")

    def _verify(self, message: bytes) -> bytes:
        assert self._first is not None and self._credentials is not None
        first, creds, h = self._first, self._credentials, self.hash
        final = parse_client_final(message)
        expected = first.gs2_header
        if first.cb_name is not None:
            expected += self._bindings[first.cb_name]
        if not hmac.compare_digest(final.channel_binding, expected):
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "channel binding mismatch")
        if final.nonce != self._nonce:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "nonce mismatch")
        if len(final.proof) != h.digest_size:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid proof length")
        auth_message = b",".join((first.bare, self._server_first, final.without_proof))
        key = crypto.recover_client_key(h, creds.stored_key, auth_message, final.proof)
        if not hmac.compare_digest(crypto.stored_key(h, key), creds.stored_key):
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "invalid credentials")
        self.result = ScramResult(first.username, first.authzid, first.cb_name)
        return format_server_final(crypto.server_signature(h, creds.server_key, auth_message))
