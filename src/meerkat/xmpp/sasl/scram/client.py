"""Client side of SCRAM and SCRAM-PLUS, for tests and the load generator.

    INITIAL --client_first--> SERVER_FIRST --receive_server_first--> PROOF
    PROOF --client_final(salted)--> SERVER_FINAL --receive_server_final--> SUCCESS

`receive_server_first` returns salt and iterations so the caller can compute (or fetch from a
cache) the SaltedPassword before `client_final`: PBKDF2 is the only expensive step.
"""

from __future__ import annotations

import base64
import hmac
from enum import Enum, auto

from ..errors import SaslCondition, SaslFailure
from . import crypto
from .messages import (
    ServerFirst,
    format_client_final_without_proof,
    format_client_first,
    is_valid_nonce,
    parse_server_final,
    parse_server_first,
)
from .server import parse_mechanism

__all__ = ["ScramClient", "ScramClientState"]


class ScramClientState(Enum):
    """Where the client is in the exchange."""

    INITIAL = auto()
    SERVER_FIRST = auto()
    PROOF = auto()
    SERVER_FINAL = auto()
    SUCCESS = auto()
    FAILED = auto()


class ScramClient:
    """One SCRAM exchange, client side."""

    def __init__(
        self,
        mechanism: str,
        username: str,
        client_nonce: str,
        *,
        authzid: str | None = None,
        channel_binding: tuple[str, bytes] | None = None,
        supports_binding: bool = False,
    ) -> None:
        """`channel_binding` = (type, data) is required for -PLUS mechanisms. For plain SCRAM,
        `supports_binding` sends the `y` flag (the client could bind but the server offered no
        -PLUS), which lets a server that did offer -PLUS detect a downgrade."""
        self.hash, self.plus = parse_mechanism(mechanism)
        if not is_valid_nonce(client_nonce):
            raise ValueError("client nonce must be printable ASCII without ','")
        if self.plus and channel_binding is None:
            raise ValueError(f"{mechanism} needs channel-binding data")
        cb_data = b""
        if self.plus and channel_binding is not None:
            flag, cb_data = f"p={channel_binding[0]}", channel_binding[1]
        else:
            flag = "y" if supports_binding else "n"
        self._header, self._bare = format_client_first(
            username, client_nonce, authzid=authzid, cb_flag=flag
        )
        self._cb = self._header + cb_data
        self._nonce = client_nonce
        self._server_first: ServerFirst | None = None
        self._auth_message = b""
        self._salted = b""
        self.state = ScramClientState.INITIAL

    def client_first(self) -> bytes:
        """The initial response."""
        self._advance(ScramClientState.INITIAL, ScramClientState.SERVER_FIRST)
        return self._header + self._bare

    def receive_server_first(self, message: bytes) -> ServerFirst:
        """Parse the challenge; compute SaltedPassword from its `.salt` and `.iterations`."""
        self._advance(ScramClientState.SERVER_FIRST, ScramClientState.PROOF)
        try:
            first = parse_server_first(message)
            if not first.nonce.startswith(self._nonce) or first.nonce == self._nonce:
                raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "server nonce does not extend ours")
        except SaslFailure:
            self.state = ScramClientState.FAILED
            raise
        self._server_first = first
        return first

    def client_final(self, salted_password: bytes) -> bytes:
        """The response carrying the proof."""
        self._advance(ScramClientState.PROOF, ScramClientState.SERVER_FINAL)
        assert self._server_first is not None
        without_proof = format_client_final_without_proof(self._cb, self._server_first.nonce)
        self._auth_message = b",".join((self._bare, self._server_first.raw, without_proof))
        self._salted = salted_password
        proof = crypto.client_proof(self.hash, salted_password, self._auth_message)
        return without_proof + b",p=" + base64.b64encode(proof)

    def receive_server_final(self, message: bytes) -> None:
        """Check the server's signature (mutual authentication); SaslFailure if it is wrong."""
        self._advance(ScramClientState.SERVER_FINAL, ScramClientState.SUCCESS)
        try:
            signature = parse_server_final(message)
            key = crypto.server_key(self.hash, self._salted)
            expected = crypto.server_signature(self.hash, key, self._auth_message)
            if not hmac.compare_digest(signature, expected):
                raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "server signature mismatch")
        except SaslFailure:
            self.state = ScramClientState.FAILED
            raise

    def _advance(self, expected: ScramClientState, to: ScramClientState) -> None:
        if self.state is not expected:
            raise RuntimeError(f"SCRAM client: {self.state.name}, expected {expected.name}")
        self.state = to
