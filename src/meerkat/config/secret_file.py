"""The cluster secret: configured, or generated once under the data directory.

`internal_databases.cets.secret` wins when set. Otherwise `<data_dir>/cluster.secret` is read,
and created on first start. Several workers may start at the same moment: the file is written
under a temporary name and hard-linked into place, so exactly one secret wins and nobody reads
a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets as random_secrets
from pathlib import Path

from meerkat.config.schema import ServerConfig

SECRET_FILE = "cluster.secret"


def cluster_secret(config: ServerConfig) -> bytes:
    """The shared secret authenticating this node's cluster links."""
    cets = config.internal_databases.cets
    if cets is not None and cets.secret is not None:
        return cets.secret.encode()
    return read_or_create_secret(config.general.data_path(SECRET_FILE))


def read_or_create_secret(path: Path) -> bytes:
    """The secret stored at `path`, creating the file (mode 0600) when it does not exist."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{random_secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(random_secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another worker won: use its secret
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < 16:
        raise ValueError(f"{path}: cluster secret is shorter than 16 bytes")
    return secret
