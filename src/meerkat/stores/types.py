"""Values shared by every store."""

from __future__ import annotations

from typing import Any, NamedTuple


class UserKey(NamedTuple):
    """A local account: (server, username), both already normalised (nodeprep/nameprep,
    lowercase). A plain `("localhost", "alice")` tuple works wherever one is expected."""

    server: str
    username: str


def to_blob(xml: str) -> bytes:
    """XML payloads are stored as UTF-8 bytes: binary-safe on every database."""
    return xml.encode("utf-8")


def from_blob(value: Any) -> str:
    """Inverse of `to_blob`; tolerates drivers that hand back memoryview/bytearray."""
    if isinstance(value, str):  # a MongooseIM database keeps XML in text columns
        return value
    return bytes(value).decode("utf-8")
