"""SCRAM (RFC 5802) with SHA-1/224/256/384/512 and the -PLUS channel-binding variants (RFC 7677).

`ScramServer` and `ScramClient` are pure state machines: bytes in, bytes out, nonces and stored
credentials passed in. Key derivation lives in `crypto`, the wire format in `messages`.
"""

from .client import ScramClient, ScramClientState
from .crypto import (
    HASHES,
    SHA1,
    SHA224,
    SHA256,
    SHA384,
    SHA512,
    ScramCredentials,
    ScramHash,
    credentials_from_password,
    credentials_from_salted,
    prepare_password,
    salted_password,
)
from .messages import ClientFirst, ServerFirst
from .server import ScramResult, ScramServer, ScramServerState, mock_credentials, parse_mechanism

__all__ = [
    "HASHES",
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "ClientFirst",
    "ScramClient",
    "ScramClientState",
    "ScramCredentials",
    "ScramHash",
    "ScramResult",
    "ScramServer",
    "ScramServerState",
    "ServerFirst",
    "credentials_from_password",
    "credentials_from_salted",
    "mock_credentials",
    "parse_mechanism",
    "prepare_password",
    "salted_password",
]
