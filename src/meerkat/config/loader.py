"""Build frozen dataclasses from TOML tables, driven by the dataclasses' field types.

Supported field types: `str`, `int`, `float`, `bool`, `Path`, `Literal[...]`, unions such as
`int | Literal["infinity"]` and `X | None`, `list[X]`, `tuple[X, ...]`, `dict[str, X]` /
`Mapping[str, X]`, nested dataclasses and `Any`. A field's default is used when its key is
absent; a field without default is required. Keys the dataclass does not declare are errors.

Two hooks:

* `def validate(self) -> list[str]` on a dataclass: cross-field rules, run whenever the
  instance could be built (every field converted; unknown keys beside them do not stop it);
  each problem is `relative.path: problem`, relative to that dataclass's table.
* `field(metadata={"builder": NAME})`: the value is built by `Loader.builders[NAME]`, for
  shapes known only at run time (the module registry). With `"builder_default": True` an
  absent key takes `FieldBuilder.default()` instead of the field's default.

Every problem is collected (never the first only) and reported as `path: problem`, e.g.
`listen.c2s[0].port: expected an integer, got "abc"`. `Loader.load` raises one `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, get_args, get_origin, get_type_hints

from meerkat.config.errors import ConfigError

T = TypeVar("T")


class _Invalid:
    """Marks a value that could not be built (its problems were recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Any = _Invalid()


class FieldBuilder(Protocol):
    """Builds one field whose shape is known only at run time."""

    def build(self, value: object, path: str) -> tuple[object, list[str]]: ...

    def default(self) -> object: ...


def join_path(path: str, key: str) -> str:
    """`general` + `hosts` -> `general.hosts`; keys that are not bare TOML keys are quoted."""
    if key.startswith("["):
        return path + key
    if not key or not all(c.isalnum() or c in "_-" for c in key):
        key = json.dumps(key)
    return f"{path}.{key}" if path else key


def prefix_problem(path: str, problem: str) -> str:
    """Make a problem reported relative to a table (`port: ...`) absolute."""
    if not path:
        return problem
    if problem.startswith("["):
        return path + problem
    return f"{path}.{problem}"


def describe_value(value: object) -> str:
    """How a TOML value is shown in a problem: `"abc"`, `42`, `true`, `a table`, `an array`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return f"a date/time ({value.isoformat()})"
    return repr(value)


def describe_type(tp: Any) -> str:
    """What a field expects, in words: `an integer`, `one of "a", "b"`, `an array`."""
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "a boolean"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is Path:
        return "a path (string)"
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "an array"
    if origin in (dict, Mapping) or dataclasses.is_dataclass(tp):
        return "a table"
    if is_union(tp):
        arms = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(describe_type(a) for a in arms)
    return "any value"


def is_union(tp: Any) -> bool:
    """Whether `tp` is `X | Y` (or `Optional`/`Union`)."""
    return get_origin(tp) in (typing.Union, types.UnionType)


@dataclasses.dataclass(frozen=True)
class Loader:
    """Converts TOML data to typed values; `builders` serve fields tagged with a builder."""

    builders: Mapping[str, FieldBuilder] = dataclasses.field(default_factory=dict)

    def load(self, cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
        """Build `cls` from `data` or raise `ConfigError` with every problem found."""
        value, problems = self.convert(cls, data, path)
        if problems:
            raise ConfigError(problems)
        return typing.cast(T, value)

    def convert(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        """Convert `value` to type `tp`; returns (result or INVALID, problems)."""
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._dataclass(tp, value, path)
        origin = get_origin(tp)
        if origin is Literal:
            return self._literal(tp, value, path)
        if is_union(tp):
            return self._union(tp, value, path)
        if origin in (list, tuple):
            return self._sequence(tp, value, path)
        if origin in (dict, Mapping):
            return self._mapping(tp, value, path)
        return self._scalar(tp, value, path)

    def _scalar(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        ok: bool
        result: object = value
        if tp is Any or tp is object:
            ok = True
        elif tp is bool:
            ok = isinstance(value, bool)
        elif tp is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif tp is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            result = float(value) if ok else value  # type: ignore[arg-type]
        elif tp is str:
            ok = isinstance(value, str)
        elif tp is Path:
            ok = isinstance(value, str) and value != ""
            result = Path(value) if ok else value  # type: ignore[arg-type]
        else:
            raise TypeError(f"{path}: unsupported config field type {tp!r}")
        if ok:
            return result, []
        return INVALID, [_expected(path, tp, value)]

    def _literal(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        for choice in get_args(tp):
            if type(choice) is type(value) and choice == value:
                return value, []
        return INVALID, [_expected(path, tp, value)]

    def _union(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        arms = [a for a in get_args(tp) if a is not type(None)]
        if len(arms) == 1:
            return self.convert(arms[0], value, path)
        table_arms = [a for a in arms if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(table_arms) == 1:
            return self.convert(table_arms[0], value, path)
        for arm in arms:
            result, problems = self.convert(arm, value, path)
            if not problems:
                return result, []
        return INVALID, [_expected(path, tp, value)]

    def _sequence(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        args = get_args(tp)
        if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{path}: only tuple[X, ...] is supported, not {tp!r}")
        if not isinstance(value, list):
            return INVALID, [_expected(path, tp, value)]
        item_type = args[0] if args else Any
        items: list[Any] = []
        problems: list[str] = []
        for index, item in enumerate(value):
            result, item_problems = self.convert(item_type, item, f"{path}[{index}]")
            items.append(result)
            problems.extend(item_problems)
        if any(item is INVALID for item in items):
            return INVALID, problems
        return (tuple(items) if get_origin(tp) is tuple else items), problems

    def _mapping(self, tp: Any, value: object, path: str) -> tuple[Any, list[str]]:
        args = get_args(tp)
        if args and args[0] is not str:
            raise TypeError(f"{path}: mapping keys must be str, not {args[0]!r}")
        if not isinstance(value, dict):
            return INVALID, [_expected(path, tp, value)]
        item_type = args[1] if args else Any
        items: dict[str, Any] = {}
        problems: list[str] = []
        for key, item in value.items():
            result, item_problems = self.convert(item_type, item, join_path(path, key))
            items[key] = result
            problems.extend(item_problems)
        return (INVALID if any(v is INVALID for v in items.values()) else items), problems

    def _dataclass(self, cls: type, value: object, path: str) -> tuple[Any, list[str]]:
        if not isinstance(value, dict):
            return INVALID, [_expected(path, cls, value)]
        hints = get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        problems = [f"{join_path(path, key)}: unknown key" for key in value if key not in fields]
        kwargs: dict[str, Any] = {}
        for name, fld in fields.items():
            fpath = join_path(path, name)
            builder = self._builder_for(fld, fpath) if _wants_builder(fld, name, value) else None
            if name in value:
                if builder is not None:
                    result, fproblems = builder.build(value[name], fpath)
                else:
                    result, fproblems = self.convert(hints[name], value[name], fpath)
                problems.extend(fproblems)
                kwargs[name] = result
            elif builder is not None and fld.metadata.get("builder_default"):
                kwargs[name] = builder.default()
            elif _has_no_default(fld):
                problems.append(f"{fpath}: required key is missing")
                kwargs[name] = INVALID
        if any(v is INVALID for v in kwargs.values()):
            return INVALID, problems
        try:
            instance = cls(**kwargs)
        except ValueError as exc:  # a __post_init__ refusing the combination
            return INVALID, [*problems, f"{path or '(top level)'}: {exc}"]
        validate: Callable[[], list[str]] | None = getattr(instance, "validate", None)
        if validate is not None:
            problems += [prefix_problem(path, p) for p in validate()]
        return instance, problems

    def _builder_for(self, fld: dataclasses.Field[Any], path: str) -> FieldBuilder | None:
        name = fld.metadata.get("builder")
        if name is None:
            return None
        if name not in self.builders:
            raise TypeError(f"{path}: no builder named {name!r} was given to the Loader")
        return self.builders[name]


def _wants_builder(fld: dataclasses.Field[Any], name: str, table: Mapping[str, Any]) -> bool:
    if "builder" not in fld.metadata:
        return False
    return name in table or bool(fld.metadata.get("builder_default"))


def _has_no_default(fld: dataclasses.Field[Any]) -> bool:
    return fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING


def _expected(path: str, tp: Any, value: object) -> str:
    return f"{path or '(top level)'}: expected {describe_type(tp)}, got {describe_value(value)}"
