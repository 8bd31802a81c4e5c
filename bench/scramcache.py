"""A file-backed cache of SCRAM SaltedPassword values for the load generator.

A server that stores SCRAM keys sends the same salt and iteration count at every login, so
the client's PBKDF2 result can be reused: the benchmark then measures the server, not the
generator's PBKDF2. Keys are (hash, salt, iterations, digest of the password); the password
itself is never written. Several generator processes may share one file: `save` merges
under an exclusive lock and replaces the file atomically.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from pathlib import Path

__all__ = ["ScramCache"]


class ScramCache:
    """SaltedPassword by (hash, salt, iterations, password digest); in memory if no path."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, str] = {}
        self._new: dict[str, str] = {}
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.exists():
            self._entries = self._read(self.path)

    @staticmethod
    def key(hash_name: str, salt: bytes, iterations: int, password: bytes) -> str:
        """Cache key; the password only appears as a truncated SHA-256 digest."""
        digest = hashlib.sha256(password).hexdigest()[:24]
        return f"{hash_name}|{base64.b64encode(salt).decode()}|{iterations}|{digest}"

    def get(self, hash_name: str, salt: bytes, iterations: int, password: bytes) -> bytes | None:
        """The cached SaltedPassword, counting hits and misses."""
        value = self._entries.get(self.key(hash_name, salt, iterations, password))
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return base64.b64decode(value)

    def put(
        self, hash_name: str, salt: bytes, iterations: int, password: bytes, salted: bytes
    ) -> None:
        """Remember a computed SaltedPassword (written by `save`)."""
        key = self.key(hash_name, salt, iterations, password)
        value = base64.b64encode(salted).decode()
        self._entries[key] = value
        self._new[key] = value

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Merge new entries into the file (no-op in memory or when nothing is new)."""
        if self.path is None or not self._new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = self._read(self.path) if self.path.exists() else {}
            merged.update(self._new)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(merged, separators=(",", ":")))
            tmp.replace(self.path)
        self._entries.update(merged)
        self._new.clear()

    @staticmethod
    def _read(path: Path) -> dict[str, str]:
        try:
            data = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
