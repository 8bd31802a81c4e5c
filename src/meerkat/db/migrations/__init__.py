"""Schema migrations: one Python module per step, `vNNNN_<what>.py`, defining `MIGRATION`.

A step holds its SQL for each dialect (the same change spelled three ways), e.g.::

    # v0002_offline_origin_id.py
    MIGRATION = Migration(
        version=2,
        description="offline_message.origin_id",
        statements={
            "sqlite": ("ALTER TABLE offline_message ADD COLUMN origin_id TEXT",),
            "pgsql": ("ALTER TABLE offline_message ADD COLUMN origin_id VARCHAR(250)",),
            "mysql": ("ALTER TABLE offline_message ADD COLUMN origin_id VARCHAR(250)",),
        },
    )

Rules: versions are consecutive from 2 (version 1 is the initial schema); adding a step also
updates the three `schema/*.sql` files to the result, so that a fresh install and a
migrated one are identical (a test checks the files' version). `Database.migrate()` applies
the steps above the database's version, in order, each recorded in `schema_version`.
Python modules rather than `.sql` files so that they ship with the package as code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

INITIAL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the statements taking version-1 to `version`, per dialect."""

    version: int
    description: str
    statements: Mapping[str, tuple[str, ...]]


def load_migrations() -> tuple[Migration, ...]:
    """Every shipped step, ordered by version (checked consecutive)."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("v") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(module.MIGRATION)
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=INITIAL_VERSION + 1):
        if migration.version != expected:
            raise RuntimeError(f"migration versions must be consecutive: missing {expected}")
    return tuple(found)


def latest_version(migrations: tuple[Migration, ...]) -> int:
    """The schema version the code expects given these steps."""
    return migrations[-1].version if migrations else INITIAL_VERSION
