-- Meerkat schema for PostgreSQL (schema version 2).
-- Close to MongooseIM 6.2.1 priv/pg.sql: same table and column names where the feature
-- exists, keyed by (server, username). XML payloads (vcard, private storage, offline
-- packets) are bytea holding UTF-8, so any string round-trips exactly (text refuses NUL).
-- Apply with:  psql -h HOST -U USER -d DATABASE -v ON_ERROR_STOP=1 -f pg.sql

CREATE TABLE schema_version (
    version INT NOT NULL PRIMARY KEY,
    description VARCHAR(250) NOT NULL,
    applied_at BIGINT NOT NULL
);

CREATE TABLE users (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    password TEXT NOT NULL,
    pass_details TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username)
);

CREATE TABLE last (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    seconds BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (server, username)
);
CREATE INDEX i_last_server_seconds ON last (server, seconds);

CREATE TABLE rosterusers (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    jid VARCHAR(250) NOT NULL,
    nick TEXT NOT NULL,
    subscription CHAR(1) NOT NULL,
    ask CHAR(1) NOT NULL,
    askmessage TEXT NOT NULL,
    approved SMALLINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username, jid)
);

CREATE TABLE rostergroups (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    jid VARCHAR(250) NOT NULL,
    grp TEXT NOT NULL
);
CREATE INDEX i_rosterg_server_user_jid ON rostergroups (server, username, jid);

CREATE TABLE roster_version (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (server, username)
);

CREATE TABLE vcard (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    vcard BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username)
);

CREATE TABLE private_storage (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    namespace VARCHAR(250) NOT NULL,
    data BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username, namespace)
);

CREATE TABLE offline_message (
    id BIGSERIAL PRIMARY KEY,
    timestamp BIGINT NOT NULL,
    expire BIGINT,
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    from_jid TEXT NOT NULL,
    packet BYTEA NOT NULL,
    permanent_fields BYTEA
);
CREATE INDEX i_offline_message ON offline_message (server, username, id);
CREATE INDEX i_offline_message_expire ON offline_message (expire);

CREATE TABLE mongoose_cluster_id (
    k VARCHAR(50) PRIMARY KEY,
    v TEXT
);

CREATE TABLE discovery_nodes (
    cluster_name VARCHAR(250) NOT NULL,
    node_name VARCHAR(250) NOT NULL,
    node_num INT NOT NULL,
    address VARCHAR(250) NOT NULL DEFAULT '',
    updated_timestamp BIGINT NOT NULL,
    PRIMARY KEY (node_name)
);
CREATE UNIQUE INDEX i_discovery_nodes_node_num ON discovery_nodes (cluster_name, node_num);

-- FAST tokens (XEP-0484): the *_token columns hold base64(SHA-256(token)), never a token.
CREATE TABLE fast_auth_token (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    user_agent_id VARCHAR(250) NOT NULL,
    current_token VARCHAR(250),
    current_expire BIGINT,
    current_count INT,
    current_mech_id SMALLINT,
    new_token VARCHAR(250),
    new_expire BIGINT,
    new_count INT,
    new_mech_id SMALLINT,
    PRIMARY KEY (server, username, user_agent_id)
);

INSERT INTO schema_version (version, description, applied_at)
    VALUES (2, 'initial schema', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT));
