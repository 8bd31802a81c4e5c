"""Schema 2: `fast_auth_token`, the FAST (XEP-0484) token slots per user and client."""

from meerkat.db.migrations import Migration

_COLUMNS = """
    current_token {text},
    current_expire {big},
    current_count {int},
    current_mech_id {small},
    new_token {text},
    new_expire {big},
    new_count {int},
    new_mech_id {small},
    PRIMARY KEY (server, username, user_agent_id)
"""
_SQLITE = {"text": "TEXT", "big": "INTEGER", "int": "INTEGER", "small": "INTEGER"}
_SERVER = {"text": "VARCHAR(250)", "big": "BIGINT", "int": "INT", "small": "SMALLINT"}

MIGRATION = Migration(
    version=2,
    description="fast_auth_token",
    statements={
        "sqlite": (
            "CREATE TABLE fast_auth_token (server TEXT NOT NULL, username TEXT NOT NULL, "
            "user_agent_id TEXT NOT NULL," + _COLUMNS.format(**_SQLITE) + ")",
        ),
        "pgsql": (
            "CREATE TABLE fast_auth_token (server VARCHAR(250) NOT NULL, "
            "username VARCHAR(250) NOT NULL, user_agent_id VARCHAR(250) NOT NULL,"
            + _COLUMNS.format(**_SERVER)
            + ")",
        ),
        "mysql": (
            "CREATE TABLE fast_auth_token (server VARCHAR(250) NOT NULL, "
            "username VARCHAR(250) NOT NULL, user_agent_id VARCHAR(250) NOT NULL,"
            + _COLUMNS.format(**_SERVER)
            + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC",
        ),
    },
)
