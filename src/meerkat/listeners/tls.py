"""TLS for listeners: server contexts, and the data channel binding needs (RFC 5929, 9266).

Python's ssl module has no keying-material exporter, which `tls-exporter` (RFC 9266) needs.
We call OpenSSL's ``SSL_export_keying_material`` through ctypes on the ``SSL*`` that CPython's
``_ssl`` object holds. The pointer's offset is checked against ``SSL_get_version`` before the
first use; if anything does not match, `tls-exporter` is simply not offered.
"""

from __future__ import annotations

import _ssl
import ctypes
import logging
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..xmpp.sasl.channel_binding import (
    TLS_EXPORTER,
    TLS_EXPORTER_LENGTH,
    available_channel_bindings,
    tls_exporter_data,
    tls_server_end_point_data,
)

log = logging.getLogger(__name__)

_EXPORTER_LABEL = b"EXPORTER-Channel-Binding"
_SSL_PTR_OFFSET = ctypes.sizeof(ctypes.c_ssize_t) + 2 * ctypes.sizeof(ctypes.c_void_p)


def server_context(
    certfile: Path, keyfile: Path | None, min_version: str = "1.2"
) -> ssl.SSLContext:
    """A server TLS context with modern defaults."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_alpn_protocols(["xmpp-client"])
    return ctx


def certificate_der(certfile: Path) -> bytes:
    """The DER of the first certificate in a PEM file (for tls-server-end-point)."""
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    return cert.public_bytes(Encoding.DER)


class _Exporter:
    def __init__(self) -> None:
        self.ok = False
        self.checked = False
        """The pointer check passed once (on a real connection)."""
        try:
            # PyDLL, not CDLL: these calls take microseconds, and CDLL releases the GIL around
            # each one (a chance for another thread to take it while the loop waits).
            lib = ctypes.PyDLL(_ssl.__file__)
            self._export = lib.SSL_export_keying_material
            self._export.argtypes = [
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_int,
            ]
            self._export.restype = ctypes.c_int
            self._version = lib.SSL_get_version
            self._version.argtypes = [ctypes.c_void_p]
            self._version.restype = ctypes.c_char_p
            self.ok = True
        except (OSError, AttributeError) as exc:
            log.warning("tls_exporter_unavailable: %s", exc)

    def export(self, ssl_object: ssl.SSLObject, length: int = 32) -> bytes | None:
        if not self.ok:
            return None
        inner = getattr(ssl_object, "_sslobj", None)
        if inner is None or type(inner).__name__ != "_SSLSocket":
            return None
        pointer = ctypes.c_void_p.from_address(id(inner) + _SSL_PTR_OFFSET).value
        if not pointer:
            return None
        version = self._version(pointer)
        if version is None or version.decode() != ssl_object.version():
            self.ok = False
            log.warning("tls_exporter_disabled: SSL pointer check failed")
            return None
        self.checked = True
        out = ctypes.create_string_buffer(length)
        if (
            self._export(pointer, out, length, _EXPORTER_LABEL, len(_EXPORTER_LABEL), b"", 0, 1)
            != 1
        ):
            return None
        return out.raw


_exporter = _Exporter()


def export_channel_binding(ssl_object: ssl.SSLObject) -> bytes | None:
    """RFC 9266 tls-exporter data of a TLS 1.3 connection (None when not available)."""
    if ssl_object.version() != "TLSv1.3":
        return None
    return _exporter.export(ssl_object)


class ConnectionBindings(Mapping[str, bytes]):
    """The channel bindings a finished TLS connection offers: the types are known at once, the
    data is computed when read (a SCRAM -PLUS exchange reads it once), so that nothing is kept
    per connection (issue 6) and listing the types, several times per login, stays cheap."""

    __slots__ = ("_certificate_der", "_ssl_object", "_types")

    def __init__(self, ssl_object: ssl.SSLObject, certificate_der: bytes) -> None:
        self._ssl_object = ssl_object
        self._certificate_der = certificate_der
        version = ssl_object.version()
        if version == "TLSv1.3" and not _exporter.checked:
            export_channel_binding(ssl_object)  # the first connection checks the pointer
        usable = version == "TLSv1.3" and _exporter.ok
        self._types = tuple(
            available_channel_bindings(
                tls_version=version,
                exporter=bytes(TLS_EXPORTER_LENGTH) if usable else None,  # a stand-in
                certificate_der=certificate_der,
            )
        )

    def __getitem__(self, key: str) -> bytes:
        if key not in self._types:
            raise KeyError(key)
        if key == TLS_EXPORTER:
            data = export_channel_binding(self._ssl_object)
            if data is None:
                raise KeyError(key)
            return tls_exporter_data(data)
        return tls_server_end_point_data(self._certificate_der)

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)
