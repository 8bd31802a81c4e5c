"""The four SCRAM messages (RFC 5802 §7): parsers and formatters, pure and strict.

Messages are UTF-8 text of comma-separated `attr=value` fields in a fixed order. Things that are
easy to get wrong and handled here:

- The GS2 header (`n,,` / `y,,` / `p=<cb-name>,` + optional `a=<authzid>` + `,`) is kept as the
  exact bytes the client sent: the `c=` attribute of client-final must echo it byte for byte.
- saslname escaping: `,` travels as `=2C` and `=` as `=3D`; any other `=` is malformed.
- `m=` (a mandatory extension) is never supported and fails the exchange; unknown *optional*
  extensions after the nonce are syntax-checked and ignored, as RFC 5802 §5.1 requires.
- Nonces are printable ASCII without `,`; proofs and channel bindings are strict base64.

Every parser raises only `SaslFailure`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ..errors import SaslCondition, SaslFailure

__all__ = [
    "ClientFinal",
    "ClientFirst",
    "ServerFirst",
    "escape_saslname",
    "format_client_final_without_proof",
    "format_client_first",
    "format_server_final",
    "format_server_first",
    "is_valid_nonce",
    "parse_client_final",
    "parse_client_first",
    "parse_server_final",
    "parse_server_first",
    "unescape_saslname",
]

_SASLNAME = re.compile(r"(?:[^=,\x00]|=2[Cc]|=3[Dd])+")
_ESCAPE = re.compile(r"=(2[Cc]|3[Dd])")
_CB_NAME = re.compile(r"[A-Za-z0-9.\-]+")
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_ATTR_VAL = re.compile(r"[A-Za-z]=[^,\x00]+")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_ITERATIONS = re.compile(r"[1-9][0-9]{0,9}")


@dataclass(frozen=True, slots=True)
class ClientFirst:
    """A parsed client-first-message."""

    gs2_header: bytes
    cb_flag: str  # "n": no binding support, "y": supported but not offered, "p": in use
    cb_name: str | None
    authzid: str | None
    username: str
    nonce: str
    bare: bytes  # client-first-message-bare, part of AuthMessage


@dataclass(frozen=True, slots=True)
class ServerFirst:
    """A parsed server-first-message."""

    nonce: str
    salt: bytes
    iterations: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class ClientFinal:
    """A parsed client-final-message."""

    channel_binding: bytes  # decoded c=: GS2 header + channel-binding data
    nonce: str
    proof: bytes
    without_proof: bytes  # client-final-message-without-proof, part of AuthMessage


def _b64encode(data: bytes) -> str:
    """`base64.b64encode(data).decode()` without its Python wrapper."""
    return binascii.b2a_base64(data, newline=False).decode()


def _malformed(text: str) -> SaslFailure:
    return SaslFailure(SaslCondition.MALFORMED_REQUEST, text)


def _text(message: bytes) -> str:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("message is not UTF-8") from None
    if "\x00" in text:
        raise _malformed("NUL in message")
    return text


def _attribute(field: str, name: str) -> str:
    if not field.startswith(name + "="):
        raise _malformed(f"expected attribute {name!r}")
    return field[len(name) + 1 :]


def _b64(value: str, what: str) -> bytes:
    if _BASE64.fullmatch(value) is None:
        raise _malformed(f"{what} is not base64")
    try:  # b64decode(value, validate=True) without its Python wrapper
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64") from None


def _nonce(value: str) -> str:
    if _NONCE.fullmatch(value) is None:
        raise _malformed("invalid nonce")
    return value


def _extensions(fields: list[str]) -> None:
    for field in fields:
        if _ATTR_VAL.fullmatch(field) is None:
            raise _malformed("invalid attribute")
        if field[0] == "m":
            raise _malformed("mandatory extension not supported")


def is_valid_nonce(nonce: str) -> bool:
    """True if `nonce` is a non-empty run of printable ASCII without commas."""
    return _NONCE.fullmatch(nonce) is not None


def escape_saslname(name: str) -> str:
    """Escape `=` and `,` in a username or authzid for the wire."""
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_saslname(value: str) -> str:
    """Inverse of `escape_saslname`; SaslFailure for an empty name or a stray `=`."""
    if _SASLNAME.fullmatch(value) is None:
        raise _malformed("invalid saslname")
    return _ESCAPE.sub(lambda m: "," if m.group(1) in ("2C", "2c") else "=", value)


def parse_client_first(message: bytes) -> ClientFirst:
    """Parse `gs2-header client-first-message-bare`."""
    fields = _text(message).split(",")
    if len(fields) < 4:
        raise _malformed("client-first-message is too short")
    flag, authz, *bare_fields = fields
    cb_name: str | None = None
    if flag in ("n", "y"):
        cb_flag = flag
    elif flag.startswith("p=") and _CB_NAME.fullmatch(flag[2:]):
        cb_flag, cb_name = "p", flag[2:]
    else:
        raise _malformed("invalid channel-binding flag")
    authzid = unescape_saslname(_attribute(authz, "a")) if authz else None
    if bare_fields[0].startswith("m="):
        raise _malformed("mandatory extension not supported")
    username = unescape_saslname(_attribute(bare_fields[0], "n"))
    nonce = _nonce(_attribute(bare_fields[1], "r"))
    _extensions(bare_fields[2:])
    return ClientFirst(
        gs2_header=f"{flag},{authz},".encode(),
        cb_flag=cb_flag,
        cb_name=cb_name,
        authzid=authzid,
        username=username,
        nonce=nonce,
        bare=",".join(bare_fields).encode(),
    )


def format_client_first(
    username: str, nonce: str, *, authzid: str | None = None, cb_flag: str = "n"
) -> tuple[bytes, bytes]:
    """Build (gs2 header, client-first-message-bare). `cb_flag` is "n", "y" or "p=<name>"."""
    authz = f"a={escape_saslname(authzid)}" if authzid else ""
    header = f"{cb_flag},{authz},".encode()
    return header, f"n={escape_saslname(username)},r={nonce}".encode()


def format_server_first(nonce: str, salt: bytes, iterations: int) -> bytes:
    """Build `r=<nonce>,s=<salt>,i=<iterations>`."""
    return f"r={nonce},s={_b64encode(salt)},i={iterations}".encode()


def parse_server_first(message: bytes) -> ServerFirst:
    """Parse a server-first-message (client side)."""
    fields = _text(message).split(",")
    if len(fields) < 3:
        raise _malformed("server-first-message is too short")
    if fields[0].startswith("m="):
        raise _malformed("mandatory extension not supported")
    nonce = _nonce(_attribute(fields[0], "r"))
    salt = _b64(_attribute(fields[1], "s"), "salt")
    iterations = _attribute(fields[2], "i")
    if _ITERATIONS.fullmatch(iterations) is None:
        raise _malformed("invalid iteration count")
    _extensions(fields[3:])
    return ServerFirst(nonce=nonce, salt=salt, iterations=int(iterations), raw=message)


def format_client_final_without_proof(channel_binding: bytes, nonce: str) -> bytes:
    """Build `c=<base64(gs2 header + cb data)>,r=<nonce>`; append `,p=<proof>` to send it."""
    return f"c={base64.b64encode(channel_binding).decode()},r={nonce}".encode()


def parse_client_final(message: bytes) -> ClientFinal:
    """Parse `c=...,r=...[,extensions],p=...`."""
    fields = _text(message).split(",")
    if len(fields) < 3:
        raise _malformed("client-final-message is too short")
    channel_binding = _b64(_attribute(fields[0], "c"), "channel binding")
    nonce = _nonce(_attribute(fields[1], "r"))
    _extensions(fields[2:-1])
    proof = _b64(_attribute(fields[-1], "p"), "proof")
    return ClientFinal(
        channel_binding=channel_binding,
        nonce=nonce,
        proof=proof,
        without_proof=",".join(fields[:-1]).encode(),
    )


def format_server_final(signature: bytes) -> bytes:
    """Build `v=<base64 ServerSignature>`."""
    return b"v=" + binascii.b2a_base64(signature, newline=False)


def parse_server_final(message: bytes) -> bytes:
    """Return the ServerSignature of `v=...`; `e=<error>` becomes not-authorized."""
    fields = _text(message).split(",")
    if fields[0].startswith("e="):
        raise SaslFailure(SaslCondition.NOT_AUTHORIZED, f"server error: {fields[0][2:]}")
    signature = _b64(_attribute(fields[0], "v"), "verifier")
    _extensions(fields[1:])
    return signature
