"""`load_config`: read `meerkat.toml` (or nothing) into a validated `ServerConfig`.

Module options are typed by a registry the caller passes in (module name -> its `Config`
dataclass), so this package knows no module. Nothing here starts anything: a `ConfigError`
listing every problem is raised before the server touches a socket or a database.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meerkat.config.errors import ConfigError
from meerkat.config.loader import INVALID, Loader, join_path
from meerkat.config.schema import ServerConfig


@dataclass(frozen=True)
class ModulesBuilder:
    """Builds a `[modules]` table: each `mod_*` key typed by its registered `Config` class."""

    registry: Mapping[str, type]
    """Module name -> its `Config` dataclass (or a `Module` class with a `Config`)."""
    defaults: tuple[str, ...] = ()
    loader: Loader = field(default_factory=Loader)

    def build(self, value: object, path: str) -> tuple[object, list[str]]:
        """The enabled modules with their configs, or INVALID and the problems."""
        if not isinstance(value, dict):
            return self.loader.convert(dict[str, Any], value, path)
        modules: dict[str, object] = {}
        problems: list[str] = []
        for name, options in value.items():
            mpath = join_path(path, name)
            config_class = config_class_of(self.registry.get(name))
            if config_class is None:
                problems.append(f"{mpath}: unknown module")
                continue
            config, mproblems = self.loader.convert(config_class, options, mpath)
            problems += mproblems
            modules[name] = config
        invalid = any(config is INVALID for config in modules.values())
        return (INVALID if invalid else modules), problems

    def default(self) -> object:
        """The default module set, each with its default options."""
        return {
            name: self.loader.load(config_class_of(self.registry[name]), {}, f"modules.{name}")
            for name in self.defaults
        }


def config_class_of(entry: type | None) -> Any:
    """A registry entry's options class: the entry itself, or its `Config` attribute (so a
    registry of `Module` classes works as well as one of `Config` dataclasses)."""
    if entry is None or dataclasses.is_dataclass(entry):
        return entry
    config = getattr(entry, "Config", None)
    if isinstance(config, type) and dataclasses.is_dataclass(config):
        return config
    raise TypeError(f"module registry entry {entry!r} is neither a dataclass nor has a Config")


def config_from_dict(
    data: Mapping[str, Any],
    module_configs: Mapping[str, type] | None = None,
    default_modules: Iterable[str] = (),
) -> ServerConfig:
    """Build and validate a `ServerConfig` from parsed TOML data."""
    registry = dict(module_configs or {})
    defaults = tuple(default_modules)
    unknown = [name for name in defaults if name not in registry]
    if unknown:
        raise ValueError(f"default modules without a Config class: {', '.join(unknown)}")
    loader = Loader(builders={"modules": ModulesBuilder(registry, defaults)})
    return loader.load(ServerConfig, data)


def config_from_toml(
    text: str,
    module_configs: Mapping[str, type] | None = None,
    default_modules: Iterable[str] = (),
    source: str = "<string>",
) -> ServerConfig:
    """Parse TOML text and build a `ServerConfig`; syntax errors become a `ConfigError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: invalid TOML: {exc}"]) from None
    return config_from_dict(data, module_configs, default_modules)


def load_config(
    path: Path | None,
    module_configs: Mapping[str, type] | None = None,
    default_modules: Iterable[str] = (),
) -> ServerConfig:
    """Load `path` (None: the embedded defaults). A missing or unreadable explicit file,
    invalid TOML or any invalid option raises one `ConfigError` listing every problem."""
    if path is None:
        return config_from_dict({}, module_configs, default_modules)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: configuration file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read configuration file: {exc}"]) from None
    return config_from_toml(text, module_configs, default_modules, source=str(path))
