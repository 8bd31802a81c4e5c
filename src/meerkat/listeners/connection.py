"""`TcpConnection`: one client TCP connection, plain or TLS, as a single asyncio protocol.

It is the c2s `Transport` of a TCP listener (STARTTLS on 5222, direct TLS on 5223, XEP-0368).
Issue 6 (memory per idle connection): asyncio's streams cost, per connection, a TLS protocol
with its own buffers, a StreamReader, a StreamWriter and a StreamReaderProtocol. Here one
object does it all: TLS runs on `ssl.SSLObject` over two memory BIOs, bytes from the socket
go into one BIO and records for the socket come out of the other, so OpenSSL's own state is
the only TLS memory a connection keeps.

The hard parts:

- STARTTLS (RFC 6120 §5.4.3.3): a client may send its ClientHello right behind
  ``<starttls/>``, in the same packet. Those bytes belong to TLS, not to the XML parser. A
  TLS record starts with byte 0x16, a character XML 1.0 forbids (UTF-8 never has it inside
  another character), so plaintext input is cut before the first 0x16 and what follows is
  held: `start_tls` feeds it to TLS; a session that reads on without starting TLS gets it
  as plaintext (and its parser rejects it, as before). Plaintext received before TLS but not
  yet delivered (the session pauses reading while it acts on ``<starttls/>``) is dropped at
  `start_tls`: it must not pass as if it came over TLS.
- The session never waits for the handshake: `start_tls` returns at once; the next
  plaintext can only come out of a finished handshake, and a failed or timed-out handshake
  ends the connection (the session then reads the end of the stream).
- Memory BIOs never shrink: what goes through them goes in slices of `BIO_SLICE`, so a
  connection that once read or wrote 64 KiB does not keep 64 KiB buffers for good.
- TLS 1.3 sends messages of its own after the handshake (session tickets, key updates):
  the outgoing BIO is flushed after every handshake step, read and write.
- Input is pushed: plaintext goes straight from `data_received` to the session's sink
  (c2s/transport.py), so an idle connection has no reader waiting. While the session pauses
  reading, input is held in one buffer, bounded (`READ_SIZE`): past it, reading from the
  socket pauses until the session resumes. Output is bounded by the session
  (`buffered()` against its `max_output_buffer`).
- A closed connection whose client does not read would keep its socket and unsent output
  forever: it is aborted after the handshake timeout.
- Behind a load balancer (`proxy_protocol`), the connection's first bytes are a PROXY protocol
  header naming the client (proxy_header.py): it is read before anything else (TLS included)
  and replaces the socket's peer; a connection without a valid one is closed.
- Nothing here keeps a reference cycle once the connection is lost: the socket transport
  is dropped in `connection_lost`, the timer is cancelled, and the session's sink is dropped
  once the end of the stream is delivered or the session closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from ..c2s.transport import Sink
from .proxy_header import ProxyHeaderError, parse_proxy_header
from .tls import ConnectionBindings

log = logging.getLogger(__name__)

READ_SIZE = 65536
"""Bytes of input held while the session pauses reading before the socket pauses too."""
RECORD = 16384
"""Largest plaintext of one TLS record: what one `SSLObject.read` can return."""
BIO_SLICE = 4096
"""Most bytes put into a memory BIO at once. A BIO keeps the buffer of the largest chunk it
ever held (87 KiB after one 64 KiB write), for as long as the connection lives: one big
read or stanza would otherwise cost an idle connection that much from then on."""
_TLS_RECORD_START = b"\x16"
"""The first byte of a TLS handshake record (a ClientHello)."""


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A listener's TLS context and its certificate (for tls-server-end-point)."""

    context: ssl.SSLContext
    certificate_der: bytes


class Phase(enum.Enum):
    PLAIN = "plain"
    """Plain TCP (before STARTTLS, or a listener without TLS)."""
    HANDSHAKE = "handshake"
    TLS = "tls"
    CLOSED = "closed"
    """The socket is closed (or closing): nothing more is read or written."""


class TcpConnection(asyncio.Protocol):
    """A client connection over TCP, optionally upgraded to TLS: the session's `Transport`."""

    __slots__ = (
        "_eof",
        "_handshake_timeout",
        "_held",
        "_holding",
        "_incoming",
        "_input",
        "_on_made",
        "_outgoing",
        "_paused",
        "_peer",
        "_pending_out",
        "_phase",
        "_proxy",
        "_sink",
        "_sslobj",
        "_timer",
        "_tls",
        "_transport",
    )

    framed = False

    def __init__(
        self,
        tls: TlsMaterial | None,
        handshake_timeout: float,
        on_made: Callable[[TcpConnection], None] | None = None,
        *,
        direct_tls: bool = False,
        proxy_protocol: bool = False,
    ) -> None:
        self._tls = tls
        self._handshake_timeout = handshake_timeout
        self._on_made = on_made
        """Called once the socket is connected (the listener starts the session)."""
        self._transport: asyncio.Transport | None = None
        self._peer = ("", 0)
        self._phase = Phase.HANDSHAKE if direct_tls else Phase.PLAIN
        self._sslobj: ssl.SSLObject | None = None
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sink: Sink | None = None
        """The session's input; None before `start_reading`, after the end of the stream was
        delivered and after `close`."""
        self._holding = True
        """Input is held, not delivered (the session has not started reading, or paused)."""
        self._input: bytes | bytearray = b""
        """Plaintext received while holding, not yet delivered."""
        self._held = b""
        """Bytes received in the clear from the first 0x16 on (a ClientHello, see above)."""
        self._eof = False
        self._paused = False
        """The socket's reading is paused (`READ_SIZE` held)."""
        self._pending_out: list[bytes] | None = None
        """Written during the handshake: sent once it is done."""
        self._proxy: bytes | None = b"" if proxy_protocol else None
        """The PROXY header's bytes so far, while one is expected; None once read (or never)."""

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self._peer = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._phase is Phase.HANDSHAKE:
            self._begin_tls()
        on_made, self._on_made = self._on_made, None
        if on_made is not None:
            on_made(self)

    def data_received(self, data: bytes) -> None:
        if self._proxy is not None:
            data = self._proxy_received(data)
            if not data:
                return
        phase = self._phase
        if phase is Phase.TLS or phase is Phase.HANDSHAKE:
            self._feed_tls(data)
        elif phase is Phase.PLAIN:
            self._plain_received(data)

    def eof_received(self) -> bool:
        if self._phase is Phase.HANDSHAKE:
            log.debug("c2s_tls_failed peer=%s reason=eof during handshake", self._peer[0])
            self._fail()
            return False
        self._end_of_input()
        return True  # keep the socket open for our closing tag; the session closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = Phase.CLOSED
        self._transport = None
        self._cancel_timer()
        self._end_of_input()

    # -- what the session calls (c2s.transport.Transport) -------------------------------------
    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    @property
    def secure(self) -> bool:
        return self._sslobj is not None

    @property
    def can_starttls(self) -> bool:
        return self._tls is not None and self._sslobj is None

    @property
    def tls_version(self) -> str | None:
        obj = self._sslobj
        return obj.version() if obj is not None else None

    def channel_bindings(self) -> Mapping[str, bytes]:
        # Made at each call (a few per login), not kept: the data is computed only when a
        # SCRAM -PLUS exchange reads it, and most connections never need it again.
        obj = self._sslobj
        if obj is None or self._tls is None or obj.version() is None:
            return {}
        return ConnectionBindings(obj, self._tls.certificate_der)

    def start_reading(self, sink: Sink) -> None:
        self._sink = sink
        self._holding = False
        self._pump()

    def pause_reading(self) -> None:
        self._holding = True

    def resume_reading(self) -> None:
        if self._sink is not None:
            self._holding = False
            self._pump()

    def write(self, data: bytes) -> None:
        phase = self._phase
        if phase is Phase.TLS:
            assert self._sslobj is not None
            try:
                self._encrypt(data)
            except ssl.SSLError as exc:
                log.debug("c2s_tls_failed peer=%s reason=%s", self._peer[0], exc)
                self._fail()
                return
            self._flush_tls()
        elif phase is Phase.PLAIN:
            self._send(data)
        elif phase is Phase.HANDSHAKE:
            if self._pending_out is None:
                self._pending_out = []
            self._pending_out.append(data)

    def buffered(self) -> int:
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    async def start_tls(self) -> None:
        """Switch to TLS (the session wrote ``<proceed/>``); the handshake goes on from the
        client's next bytes, or from those it sent right behind ``<starttls/>``."""
        assert self._phase is Phase.PLAIN and self._tls is not None
        self._phase = Phase.HANDSHAKE
        self._input = b""  # plaintext sent behind <starttls/>: must not pass for TLS input
        self._begin_tls()
        held, self._held = self._held, b""
        if held:
            self.data_received(held)
        self._resume_socket()

    def close(self) -> None:
        """Close after sending what was written (with a TLS close_notify when in TLS); a client
        that has not taken it all within the handshake timeout is cut off."""
        self._sink = None
        self._holding = True
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._phase is Phase.TLS:
            assert self._sslobj is not None
            # SSLWantReadError: our close_notify is written; the peer's is not awaited.
            with contextlib.suppress(ssl.SSLError):
                self._sslobj.unwrap()
            self._flush_tls()
        self._phase = Phase.CLOSED
        self._cancel_timer()
        transport.close()
        if transport.get_write_buffer_size():
            # A client that does not read would keep the socket and its unsent bytes forever.
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._handshake_timeout, transport.abort)

    # -- inside -------------------------------------------------------------------------------
    def _proxy_received(self, data: bytes) -> bytes:
        """Read the PROXY header; what follows it (b"" while it is incomplete)."""
        assert self._proxy is not None
        buffered = self._proxy + data if self._proxy else data
        try:
            parsed = parse_proxy_header(buffered)
        except ProxyHeaderError as exc:
            log.info("c2s_proxy_header_refused peer=%s reason=%s", self._peer[0], exc)
            self._proxy = None
            self._fail()
            return b""
        if parsed is None:
            self._proxy = buffered
            return b""
        self._proxy = None
        address, used = parsed
        if address is not None:
            self._peer = address
        return buffered[used:]

    def _plain_received(self, data: bytes) -> None:
        if not self._held and (self._tls is None or _TLS_RECORD_START not in data):
            self._deliver(data)
            return
        if self._held:
            self._held += data
        else:
            cut = data.index(_TLS_RECORD_START)
            self._held = data[cut:]
            if cut:
                self._deliver(data[:cut])
        if len(self._held) >= READ_SIZE:
            self._pause_socket()
        self._pump()  # a session reading on without STARTTLS gets the held bytes

    def _begin_tls(self) -> None:
        assert self._tls is not None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = self._tls.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._handshake_timeout, self._on_handshake_timeout)

    def _feed_tls(self, data: bytes) -> None:
        """Bytes from the socket into TLS, at most `BIO_SLICE` at a time."""
        incoming = self._incoming
        assert incoming is not None
        if len(data) <= BIO_SLICE:
            incoming.write(data)
            self._advance_tls()
            return
        view = memoryview(data)
        for start in range(0, len(data), BIO_SLICE):
            incoming.write(view[start : start + BIO_SLICE])
            self._advance_tls()
            if self._phase is Phase.CLOSED or self._eof:
                return

    def _encrypt(self, data: bytes) -> None:
        """Plaintext into TLS records in the outgoing BIO; a large write goes in slices of
        `BIO_SLICE` and leaves as one socket write."""
        sslobj, outgoing = self._sslobj, self._outgoing
        assert sslobj is not None and outgoing is not None
        if len(data) <= BIO_SLICE:
            sslobj.write(data)
            return
        pieces = [outgoing.read()] if outgoing.pending else []
        view = memoryview(data)
        for start in range(0, len(data), BIO_SLICE):
            sslobj.write(view[start : start + BIO_SLICE])
            pieces.append(outgoing.read())
        self._send(b"".join(pieces))

    def _advance_tls(self) -> None:
        sslobj = self._sslobj
        assert sslobj is not None
        if self._phase is Phase.HANDSHAKE:
            try:
                sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush_tls()
                return
            except (ssl.SSLError, ValueError) as exc:
                log.debug("c2s_tls_failed peer=%s reason=%s", self._peer[0], exc)
                self._fail()
                return
            self._phase = Phase.TLS
            self._cancel_timer()
            pending, self._pending_out = self._pending_out, None
            for data in pending or ():
                self._encrypt(data)
        chunks: list[bytes] = []
        incoming = self._incoming
        assert incoming is not None
        closed = False
        try:
            while incoming.pending or sslobj.pending():
                chunk = sslobj.read(RECORD)
                if not chunk:  # close_notify
                    closed = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass  # a record not complete yet
        except ssl.SSLZeroReturnError:
            closed = True
        except ssl.SSLError as exc:
            log.debug("c2s_tls_failed peer=%s reason=%s", self._peer[0], exc)
            self._fail()
            return
        self._flush_tls()
        if chunks:
            self._deliver(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if closed:
            self._end_of_input()

    def _flush_tls(self) -> None:
        outgoing = self._outgoing
        assert outgoing is not None
        if outgoing.pending:
            self._send(outgoing.read())

    def _send(self, data: bytes) -> None:
        """To the socket, unless it is gone or closing."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _deliver(self, data: bytes) -> None:
        """Plaintext for the session: handed over now, or held while it does not read."""
        if not self._holding:
            assert self._sink is not None
            self._sink(data)  # nothing is held while the session reads
            return
        current = self._input
        if not current:
            self._input = data
        elif isinstance(current, bytes):
            self._input = bytearray(current) + data
        else:
            current += data
        if len(self._input) >= READ_SIZE:
            self._pause_socket()

    def _pump(self) -> None:
        """Hand the session what was held, in order, for as long as it reads: the input, the
        bytes held as a ClientHello once they are not TLS after all, then the end."""
        while not self._holding:
            sink = self._sink
            assert sink is not None
            if self._input:
                data, self._input = self._input, b""
                sink(data if isinstance(data, bytes) else bytes(data))
            elif self._held and self._phase is Phase.PLAIN:
                # Not TLS after all: the session's parser gets (and refuses) these bytes.
                data, self._held = self._held, b""
                sink(data)
            elif self._eof:
                self._sink, self._holding = None, True
                sink(b"")
            else:
                break
        if not self._input and len(self._held) < READ_SIZE:
            self._resume_socket()

    def _pause_socket(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _resume_socket(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _end_of_input(self) -> None:
        self._eof = True
        self._pump()

    def _fail(self) -> None:
        """TLS failed: send what OpenSSL has for the peer (an alert) and close."""
        if self._outgoing is not None:
            self._flush_tls()
        self._phase = Phase.CLOSED
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()
        self._end_of_input()

    def _on_handshake_timeout(self) -> None:
        self._timer = None
        if self._phase is Phase.HANDSHAKE:
            log.debug("c2s_tls_failed peer=%s reason=handshake timeout", self._peer[0])
            self._fail()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
