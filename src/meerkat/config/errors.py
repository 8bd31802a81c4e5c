"""The one exception configuration loading raises: every problem found, as `path: problem`."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists each one as `path: problem`.

    Raised once, after the whole file was checked, so an operator fixes everything in one go.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.problems)
        head = f"invalid configuration ({count} problem{'s' if count != 1 else ''})"
        return "\n  ".join([head + ":", *self.problems])
