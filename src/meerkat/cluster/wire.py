"""Cluster wire format and link handshake: pure code, no asyncio, no clock, no randomness.

Frames are a 4-byte big-endian length followed by one msgpack object (never pickle).
Tuples survive the trip (as msgpack extension type 1), because table keys are tuples.

Handshake (symmetric; both sides send HELLO as soon as the connection opens):

    HELLO  ["hello", version, cluster, node, boot_id, nonce]
    PROOF  ["proof", HMAC-SHA256(secret, transcript(prover, verifier))]
    then the accepting side decides: WELCOME ["welcome"] or REJECT ["reject", reason]

Each side proves knowledge of the secret over its *own* hello (node, boot id, nonce)
and the peer's nonce, so the secret never travels, a proof cannot be replayed on
another connection (fresh nonces) and cannot be reflected back (the prover's own
fresh nonce comes first). The accept/reject step exists so that two nodes dialing
each other at the same time agree on which connection survives (see `link.py`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import (
    AuthenticationFailed,
    HandshakeError,
    HandshakeRejected,
    ProtocolError,
    SelfConnection,
)

PROTOCOL_VERSION = 3
"""2: table acks are cumulative (a version-1 node would wait for one ack per op);
3: a table op's keys travel as arrays, not as tuples (`table.op_to_wire`)."""
DEFAULT_MAX_FRAME = 32 * 1024 * 1024
HANDSHAKE_MAX_FRAME = 4096  # before authentication a peer gets no big buffers
_LEN = struct.Struct(">I")
_TUPLE_EXT = 1
_PROOF_LABEL = b"meerkat-cluster-proof-v1"

# Post-handshake message tags understood by the link itself.
HEARTBEAT = "hb"


def _default(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return msgpack.ExtType(_TUPLE_EXT, _pack(list(obj)))
    raise TypeError(f"cannot encode {type(obj).__name__} on the cluster wire")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _TUPLE_EXT:
        return tuple(_unpack(data, len(data) + 1))
    raise ProtocolError(f"unknown msgpack extension type {code}")


_BUF_SIZE = 1024
"""Initial buffer of each msgpack Packer (it grows as needed). msgpack's default is 1 MiB:
a tuple packed inside a message needs a second buffer while the first is in use, and glibc
serves that one with mmap + munmap, page faults included (15.7 µs to encode a session-table
op; 2.9 µs with small buffers)."""


def _pack(obj: Any) -> bytes:
    return msgpack.packb(  # type: ignore[no-any-return]
        obj, use_bin_type=True, strict_types=True, default=_default, buf_size=_BUF_SIZE
    )


def _unpack(data: bytes | memoryview, max_size: int) -> Any:
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            ext_hook=_ext_hook,
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        raise ProtocolError(f"malformed msgpack: {exc.__class__.__name__}") from exc


def encode(obj: Any) -> bytes:
    """One frame: length prefix + msgpack body."""
    body = _pack(obj)
    return _LEN.pack(len(body)) + body


def encoded_size(obj: Any) -> int:
    """Bytes `obj` takes on the wire (used as a memory estimate)."""
    return len(_pack(obj))


class FrameEncoder:
    """`encode` for one link: keeps its msgpack packer instead of building one per frame
    (a packer's construction, keyword parsing and buffer were a third of encoding a small
    frame). Not reentrant, like the link that owns it; tuples still get their own packer."""

    def __init__(self) -> None:
        self._packer = msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_default, buf_size=_BUF_SIZE
        )

    def encode(self, obj: Any) -> bytes:
        body: bytes = self._packer.pack(obj)
        return _LEN.pack(len(body)) + body


class FrameDecoder:
    """Accumulates bytes and yields decoded frames; rejects oversize frames."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> tuple[bool, Any]:
        """(True, message) when a whole frame is buffered, else (False, None)."""
        if len(self._buf) < 4:
            return False, None
        (size,) = _LEN.unpack_from(self._buf)
        if size > self.max_frame:
            raise ProtocolError(f"frame of {size} bytes exceeds limit {self.max_frame}")
        if len(self._buf) < 4 + size:
            return False, None
        body = bytes(self._buf[4 : 4 + size])
        del self._buf[: 4 + size]
        return True, _unpack(body, self.max_frame)

    def messages(self) -> list[Any]:
        """Every whole frame buffered, decoded in order.

        One read often holds many frames (a peer's loop turn leaves as one write): they are
        decoded in place through one memoryview and the buffer is cut once at the end, not
        copied and shifted once per frame. A bad frame raises after the frames before it
        were consumed (the link closes anyway).
        """
        buf = self._buf
        end = len(buf)
        out: list[Any] = []
        if end < 4:
            return out
        pos = 0
        view = memoryview(buf)
        try:
            while end - pos >= 4:
                (size,) = _LEN.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise ProtocolError(f"frame of {size} bytes exceeds limit {self.max_frame}")
                stop = pos + 4 + size
                if stop > end:
                    break
                body = view[pos + 4 : stop]
                try:
                    out.append(_unpack(body, self.max_frame))
                finally:
                    body.release()  # a traceback must not keep the buffer exported
                pos = stop
        finally:
            view.release()  # a bytearray with an exported view cannot be resized
            if pos:
                del buf[:pos]
        return out


@dataclass(frozen=True, slots=True)
class Hello:
    """What a node says about itself when a link opens."""

    version: int
    cluster: str
    node: str
    boot_id: str
    nonce: bytes


class HandshakeState(enum.Enum):
    AWAIT_HELLO = "await_hello"
    AWAIT_PROOF = "await_proof"
    AWAIT_DECISION = "await_decision"  # acceptor: peer proven, local node must decide
    AWAIT_WELCOME = "await_welcome"  # initiator: peer proven, waiting for the verdict
    ESTABLISHED = "established"
    FAILED = "failed"


def proof(secret: bytes, prover: Hello, verifier_nonce: bytes) -> bytes:
    transcript = _pack(
        [prover.version, prover.cluster, prover.node, prover.boot_id, prover.nonce, verifier_nonce]
    )
    return hmac.new(secret, _PROOF_LABEL + transcript, hashlib.sha256).digest()


def _parse_hello(msg: Any) -> Hello:
    if not (isinstance(msg, list) and len(msg) == 6 and msg[0] == "hello"):
        raise HandshakeError("expected hello")
    _, version, cluster, node, boot_id, nonce = msg
    if not (
        isinstance(version, int)
        and isinstance(cluster, str)
        and isinstance(node, str)
        and node
        and isinstance(boot_id, str)
        and isinstance(nonce, bytes)
        and len(nonce) >= 16
    ):
        raise HandshakeError("malformed hello")
    return Hello(version, cluster, node, boot_id, nonce)


class Handshake:
    """Sans-IO handshake of one link end. Feed decoded messages, send what it returns."""

    def __init__(self, *, secret: bytes, local: Hello, initiator: bool) -> None:
        self._secret = secret
        self.local = local
        self.initiator = initiator
        self.state = HandshakeState.AWAIT_HELLO
        self.peer: Hello | None = None

    def start(self) -> bytes:
        """The HELLO frame to send first."""
        h = self.local
        return encode(["hello", h.version, h.cluster, h.node, h.boot_id, h.nonce])

    def receive(self, msg: Any) -> bytes:
        """Process one peer message; returns bytes to send (may be empty)."""
        try:
            return self._receive(msg)
        except HandshakeError:
            self.state = HandshakeState.FAILED
            raise

    def _receive(self, msg: Any) -> bytes:
        if self.state is HandshakeState.AWAIT_HELLO:
            peer = _parse_hello(msg)
            if peer.version != self.local.version:
                raise HandshakeError(f"protocol version {peer.version} != {self.local.version}")
            if peer.cluster != self.local.cluster:
                raise HandshakeError(f"peer is in cluster {peer.cluster!r}")
            if peer.nonce == self.local.nonce:
                raise AuthenticationFailed("peer echoed our nonce")
            if peer.node == self.local.node:
                raise SelfConnection("connection to self")
            self.peer = peer
            self.state = HandshakeState.AWAIT_PROOF
            return encode(["proof", proof(self._secret, self.local, peer.nonce)])
        if self.state is HandshakeState.AWAIT_PROOF:
            assert self.peer is not None
            if not (isinstance(msg, list) and len(msg) == 2 and msg[0] == "proof"):
                raise HandshakeError("expected proof")
            expected = proof(self._secret, self.peer, self.local.nonce)
            if not isinstance(msg[1], bytes) or not hmac.compare_digest(msg[1], expected):
                raise AuthenticationFailed("bad cluster secret proof")
            self.state = (
                HandshakeState.AWAIT_WELCOME if self.initiator else HandshakeState.AWAIT_DECISION
            )
            return b""
        if self.state is HandshakeState.AWAIT_WELCOME:
            if msg == ["welcome"]:
                self.state = HandshakeState.ESTABLISHED
                return b""
            if isinstance(msg, list) and len(msg) == 2 and msg[0] == "reject":
                self.state = HandshakeState.FAILED
                raise HandshakeRejected(str(msg[1]))
            raise HandshakeError("expected welcome")
        raise HandshakeError(f"unexpected message in state {self.state.value}")

    def accept(self) -> bytes:
        """Acceptor only: the peer is proven and wanted."""
        self._expect_decision()
        self.state = HandshakeState.ESTABLISHED
        return encode(["welcome"])

    def reject(self, reason: str) -> bytes:
        """Acceptor only: refuse a proven peer (duplicate link, shutting down)."""
        self._expect_decision()
        self.state = HandshakeState.FAILED
        return encode(["reject", reason])

    def _expect_decision(self) -> None:
        if self.state is not HandshakeState.AWAIT_DECISION:
            raise HandshakeError(f"no decision expected in state {self.state.value}")
