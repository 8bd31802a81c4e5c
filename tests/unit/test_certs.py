"""The self-signed certificate a node creates for itself when none is configured."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

from meerkat.listeners.certs import ensure_self_signed

CREATE = (
    "import sys; from pathlib import Path; "
    "from meerkat.listeners.certs import ensure_self_signed; "
    "ensure_self_signed(Path(sys.argv[1]), ['localhost'])"
)


def test_a_created_pair_loads_and_is_reused(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, ["localhost"])
    first = cert.read_bytes()
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    assert ensure_self_signed(tmp_path, ["localhost"]) == (cert, key)
    assert cert.read_bytes() == first


def test_workers_starting_together_end_with_one_matching_pair(tmp_path: Path) -> None:
    for _ in range(3):
        directory = tmp_path / f"round{_}"
        procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(directory)]) for _ in range(8)]
        assert [p.wait(timeout=60) for p in procs] == [0] * 8
        cert, key = directory / "cert.pem", directory / "key.pem"
        # load_cert_chain fails when the key is not the certificate's.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        assert sorted(p.name for p in directory.iterdir()) == [".lock", "cert.pem", "key.pem"]
