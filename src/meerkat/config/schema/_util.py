"""Small helpers shared by the schema modules: field docs and common checks."""

from __future__ import annotations

from typing import Any

from meerkat.config.loader import describe_value


def doc(text: str, default: str | None = None) -> dict[str, Any]:
    """Field metadata: the option's documentation and, optionally, how to show its default."""
    meta: dict[str, Any] = {"doc": text}
    if default is not None:
        meta["default_doc"] = default
    return meta


def check_port(key: str, port: int) -> list[str]:
    """`port: must be between 1 and 65535, got 0` or nothing."""
    if 1 <= port <= 65535:
        return []
    return [f"{key}: must be between 1 and 65535, got {port}"]


def check_min(key: str, value: int | float, minimum: int | float) -> list[str]:
    """`key: must be at least N, got M` or nothing."""
    if value >= minimum:
        return []
    return [f"{key}: must be at least {minimum}, got {value}"]


def check_unique(key: str, values: tuple[str, ...] | list[str]) -> list[str]:
    """One problem per repeated item of an array."""
    seen: set[str] = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{key}[{index}]: duplicate value {quote(value)}")
        seen.add(value)
    return problems


def quote(value: object) -> str:
    """A value as TOML shows it in a problem: `"text"`, `42`, `true`."""
    return describe_value(value)
