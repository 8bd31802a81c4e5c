"""`ApiError`: a refused admin operation, with MongooseIM's error code and message.

GraphQL renders it as an entry of `errors` with ``extensions.code`` (and the ``extra`` fields,
e.g. the ``jid`` or ``domain`` concerned) next to a null result.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """``code`` is MongooseIM's error atom (``exists``, ``domain_not_found`` ...)."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.extra!r})"
