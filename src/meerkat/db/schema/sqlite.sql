-- Meerkat schema for SQLite (schema version 2). The server creates it on first start
-- (create_schema defaults to true for sqlite). Same tables as pg.sql / mysql.sql.
-- XML payloads are BLOBs holding UTF-8; text compares with the BINARY collation (exact).

CREATE TABLE schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);

CREATE TABLE users (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    pass_details TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username)
);

CREATE TABLE last (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    seconds INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (server, username)
);
CREATE INDEX i_last_server_seconds ON last (server, seconds);

CREATE TABLE rosterusers (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    jid TEXT NOT NULL,
    nick TEXT NOT NULL,
    subscription TEXT NOT NULL,
    ask TEXT NOT NULL,
    askmessage TEXT NOT NULL,
    approved INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username, jid)
);

CREATE TABLE rostergroups (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    jid TEXT NOT NULL,
    grp TEXT NOT NULL
);
CREATE INDEX i_rosterg_server_user_jid ON rostergroups (server, username, jid);

CREATE TABLE roster_version (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (server, username)
);

CREATE TABLE vcard (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    vcard BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username)
);

CREATE TABLE private_storage (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    namespace TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username, namespace)
);

CREATE TABLE offline_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    expire INTEGER,
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    from_jid TEXT NOT NULL,
    packet BLOB NOT NULL,
    permanent_fields BLOB
);
CREATE INDEX i_offline_message ON offline_message (server, username, id);
CREATE INDEX i_offline_message_expire ON offline_message (expire);

CREATE TABLE mongoose_cluster_id (
    k TEXT PRIMARY KEY,
    v TEXT
);

CREATE TABLE discovery_nodes (
    cluster_name TEXT NOT NULL,
    node_name TEXT NOT NULL PRIMARY KEY,
    node_num INTEGER NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    updated_timestamp INTEGER NOT NULL
);
CREATE UNIQUE INDEX i_discovery_nodes_node_num ON discovery_nodes (cluster_name, node_num);

-- FAST tokens (XEP-0484): the *_token columns hold base64(SHA-256(token)), never a token.
CREATE TABLE fast_auth_token (
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    user_agent_id TEXT NOT NULL,
    current_token TEXT,
    current_expire INTEGER,
    current_count INTEGER,
    current_mech_id INTEGER,
    new_token TEXT,
    new_expire INTEGER,
    new_count INTEGER,
    new_mech_id INTEGER,
    PRIMARY KEY (server, username, user_agent_id)
);

INSERT INTO schema_version (version, description, applied_at)
    VALUES (2, 'initial schema', CAST(strftime('%s', 'now') AS INTEGER));
