"""TLS options shared by listeners: certificate files, verification, ciphers, versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meerkat.config.schema._util import doc

C2STlsMode = Literal["starttls_required", "starttls", "tls", "none"]


@dataclass(frozen=True)
class TlsConfig:
    """TLS of a listener. Without `certfile` a self-signed certificate for the served
    domains is generated under `<data_dir>/certs/` on first start and reused afterwards."""

    certfile: Path | None = field(
        default=None,
        metadata=doc(
            "PEM certificate chain (may also hold the key). Unset: a self-signed "
            "certificate is generated under `<data_dir>/certs/`."
        ),
    )
    keyfile: Path | None = field(
        default=None,
        metadata=doc("PEM private key, when not inside `certfile`. Needs `certfile`."),
    )
    cacertfile: Path | None = field(
        default=None,
        metadata=doc('PEM CA bundle to verify client certificates (`verify_mode = "peer"`).'),
    )
    verify_mode: Literal["none", "peer"] = field(
        default="none",
        metadata=doc(
            '"peer" requests and verifies client certificates against `cacertfile` '
            '(SASL EXTERNAL); "none" does not ask for one.'
        ),
    )
    ciphers: str | None = field(
        default=None,
        metadata=doc(
            "OpenSSL cipher list for TLS 1.2; unset keeps Python's secure defaults.",
            default="unset (Python's defaults)",
        ),
    )
    min_version: Literal["1.2", "1.3"] = field(
        default="1.2", metadata=doc("Lowest TLS version accepted.")
    )

    def validate(self) -> list[str]:
        """A key needs a certificate; peer verification needs a CA bundle."""
        problems: list[str] = []
        if self.keyfile is not None and self.certfile is None:
            problems.append("keyfile: set without certfile")
        if self.verify_mode == "peer" and self.cacertfile is None:
            problems.append('cacertfile: required when verify_mode = "peer"')
        return problems

    @property
    def generates_certificate(self) -> bool:
        """True when the server must create (or reuse) a self-signed certificate."""
        return self.certfile is None


@dataclass(frozen=True)
class C2STlsConfig(TlsConfig):
    """`[listen.c2s.tls]`: TLS of a client listener, with how TLS is started."""

    mode: C2STlsMode = field(
        default="starttls_required",
        metadata=doc(
            '"starttls_required": clients must upgrade with STARTTLS before authenticating; '
            '"starttls": upgrade offered, plain text allowed; "tls": TLS from the first byte '
            '(direct TLS, XEP-0368); "none": plain text only (tests, benchmarks).'
        ),
    )

    @property
    def enabled(self) -> bool:
        """Whether this listener uses TLS at all."""
        return self.mode != "none"
