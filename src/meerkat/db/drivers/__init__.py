"""Driver adapters: one small class per database library, all with the `Connection` shape.

Each adapter translates its library's exceptions into `meerkat.db.errors` and nothing else
leaves it; everything above (pool, `Database`, stores) is driver-agnostic.
"""

from __future__ import annotations

from pathlib import Path

from meerkat.db.drivers.base import Connection
from meerkat.db.settings import DatabaseSettings


async def connect(settings: DatabaseSettings, data_dir: Path) -> Connection:
    """Open one new connection for `settings` (raises DatabaseUnavailable with the reason)."""
    if settings.driver == "sqlite":
        from meerkat.db.drivers.sqlite import SqliteConnection

        return await SqliteConnection.connect(settings, data_dir)
    if settings.driver == "pgsql":
        from meerkat.db.drivers.pgsql import PgConnection

        return await PgConnection.connect(settings)
    from meerkat.db.drivers.mysql import MysqlConnection

    return await MysqlConnection.connect(settings)


__all__ = ["Connection", "connect"]
