"""The generic TOML -> frozen dataclass loader, on small dataclasses of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from meerkat.config import ConfigError, Loader
from meerkat.config.loader import INVALID


@dataclass(frozen=True)
class Inner:
    port: int
    name: str = "x"

    def validate(self) -> list[str]:
        return [] if self.port > 0 else [f"port: must be positive, got {self.port}"]


@dataclass(frozen=True)
class Outer:
    text: str = "t"
    ratio: float = 1.5
    flag: bool = False
    where: Path = Path("var")
    mode: Literal["a", "b"] = "a"
    limit: int | Literal["infinity"] = "infinity"
    maybe: int | None = None
    items: list[int] = field(default_factory=list)
    names: tuple[str, ...] = ()
    table: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=lambda: Inner(port=1))
    inners: tuple[Inner, ...] = ()
    by_name: dict[str, Inner] = field(default_factory=dict)
    optional_inner: Inner | None = None
    anything: Any = None


def load(data: dict[str, Any]) -> Outer:
    return Loader().load(Outer, data)


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(data)
    return info.value.problems


def test_an_empty_table_gives_every_default() -> None:
    assert load({}) == Outer()


def test_every_supported_type_is_converted() -> None:
    config = load(
        {
            "text": "hello",
            "ratio": 2,
            "flag": True,
            "where": "/tmp/x",
            "mode": "b",
            "limit": 5,
            "maybe": 3,
            "items": [1, 2],
            "names": ["a", "b"],
            "table": {"k": 1},
            "inner": {"port": 7},
            "inners": [{"port": 1}, {"port": 2, "name": "y"}],
            "by_name": {"one": {"port": 3}},
            "optional_inner": {"port": 4},
            "anything": {"free": ["form"]},
        }
    )
    assert config.ratio == 2.0 and isinstance(config.ratio, float)
    assert config.where == Path("/tmp/x")
    assert config.limit == 5
    assert config.items == [1, 2]
    assert config.names == ("a", "b")
    assert config.inners == (Inner(1), Inner(2, "y"))
    assert config.by_name == {"one": Inner(3)}
    assert config.optional_inner == Inner(4)
    assert config.anything == {"free": ["form"]}


def test_a_union_with_a_literal_accepts_the_literal() -> None:
    assert load({"limit": "infinity"}).limit == "infinity"


def test_wrong_types_are_reported_with_their_path_and_value() -> None:
    assert problems_of(
        {"text": 1, "flag": "yes", "items": [1, "two"], "inner": {"port": "abc"}}
    ) == [
        "text: expected a string, got 1",
        'flag: expected a boolean, got "yes"',
        'items[1]: expected an integer, got "two"',
        'inner.port: expected an integer, got "abc"',
    ]


def test_a_boolean_is_not_accepted_as_an_integer() -> None:
    assert problems_of({"maybe": True}) == ["maybe: expected an integer, got true"]


def test_a_bad_choice_lists_the_choices() -> None:
    assert problems_of({"mode": "c"}) == ['mode: expected one of "a", "b", got "c"']


def test_a_union_failure_names_every_alternative() -> None:
    assert problems_of({"limit": "lots"}) == [
        'limit: expected an integer or one of "infinity", got "lots"'
    ]


def test_tables_and_arrays_are_described_when_misplaced() -> None:
    assert problems_of({"inner": [1], "names": {"a": 1}}) == [
        "names: expected an array, got a table",
        "inner: expected a table, got an array",
    ]


def test_unknown_keys_are_errors_at_every_level() -> None:
    assert problems_of(
        {"bogus": 1, "inner": {"port": 1, "prot": 2}, "inners": [{"port": 1, "x": 0}]}
    ) == [
        "bogus: unknown key",
        "inner.prot: unknown key",
        "inners[0].x: unknown key",
    ]


def test_keys_that_are_not_bare_are_quoted_in_paths() -> None:
    assert problems_of({"by_name": {"a b": {"port": "x"}}}) == [
        'by_name."a b".port: expected an integer, got "x"'
    ]


def test_a_missing_required_key_is_reported() -> None:
    assert problems_of({"inners": [{"name": "n"}]}) == ["inners[0].port: required key is missing"]


def test_the_validate_hook_reports_relative_to_its_table() -> None:
    assert problems_of({"inners": [{"port": 1}, {"port": 0}], "by_name": {"z": {"port": -1}}}) == [
        "inners[1].port: must be positive, got 0",
        "by_name.z.port: must be positive, got -1",
    ]


def test_validation_still_runs_beside_an_unknown_key() -> None:
    assert problems_of({"inner": {"port": 0, "extra": 1}}) == [
        "inner.extra: unknown key",
        "inner.port: must be positive, got 0",
    ]


def test_empty_paths_are_not_valid_path_values() -> None:
    assert problems_of({"where": ""}) == ['where: expected a path (string), got ""']


@dataclass(frozen=True)
class WithBuilder:
    plugins: dict[str, Any] = field(
        default_factory=dict, metadata={"builder": "plugins", "builder_default": True}
    )


class PluginBuilder:
    def build(self, value: object, path: str) -> tuple[object, list[str]]:
        if value == {"ok": {}}:
            return {"ok": "built"}, []
        return INVALID, [f"{path}: not ok"]

    def default(self) -> object:
        return {"default": "built"}


def test_a_builder_field_is_built_by_the_named_builder() -> None:
    loader = Loader(builders={"plugins": PluginBuilder()})
    assert loader.load(WithBuilder, {"plugins": {"ok": {}}}).plugins == {"ok": "built"}
    assert loader.load(WithBuilder, {}).plugins == {"default": "built"}
    with pytest.raises(ConfigError) as info:
        loader.load(WithBuilder, {"plugins": {"bad": {}}})
    assert info.value.problems == ["plugins: not ok"]


def test_the_error_message_lists_every_problem() -> None:
    error = ConfigError(["a: one", "b: two"])
    assert str(error) == "invalid configuration (2 problems):\n  a: one\n  b: two"
