"""Convert a configured database pool to the database layer's `DatabaseSettings`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meerkat.config.schema import RdbmsPool

if TYPE_CHECKING:
    from meerkat.db.settings import DatabaseSettings


def pool_settings(pool: RdbmsPool) -> DatabaseSettings:
    """The flat runtime settings of `pool` (timeouts in seconds, driver defaults applied).

    A relative SQLite file stays relative: the database layer resolves it against
    `general.data_dir`.
    """
    from meerkat.db.settings import DatabaseSettings

    conn = pool.connection
    return DatabaseSettings(
        driver=conn.driver,
        host=conn.host,
        port=conn.port,
        database=conn.database_name,
        username=conn.username,
        password=conn.password,
        workers=pool.workers,
        query_timeout=conn.query_timeout / 1000,
        connect_timeout=conn.connect_timeout / 1000,
        tls=conn.tls is not None and conn.tls.required,
        cafile=str(conn.tls.cacertfile) if conn.tls and conn.tls.cacertfile else None,
        schema=conn.schema,
        create_schema=pool.create_schema,
    )
