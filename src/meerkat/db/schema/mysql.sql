-- Meerkat schema for MySQL 8 / MariaDB 10.5+ (schema version 2).
-- Close to MongooseIM 6.2.1 priv/mysql.sql, keyed by (server, username).
-- Every table is utf8mb4 with the binary collation: emoji are distinct characters and keys
-- compare exactly (the *_ci collations would make 'A' = 'a' and all emoji equal).
-- XML payloads are MEDIUMBLOB holding UTF-8 (up to 16 MiB, binary-safe); free text is
-- MEDIUMTEXT because TEXT stops at 64 KiB *bytes*.
-- Apply with:  mysql -h HOST -u USER -p DATABASE < mysql.sql

CREATE TABLE schema_version (
    version INT NOT NULL PRIMARY KEY,
    description VARCHAR(250) NOT NULL,
    applied_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE users (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    password MEDIUMTEXT NOT NULL,
    pass_details MEDIUMTEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE last (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    seconds BIGINT NOT NULL,
    state MEDIUMTEXT NOT NULL,
    PRIMARY KEY (server, username),
    INDEX i_last_server_seconds (server, seconds)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE rosterusers (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    jid VARCHAR(250) NOT NULL,
    nick MEDIUMTEXT NOT NULL,
    subscription CHAR(1) NOT NULL,
    ask CHAR(1) NOT NULL,
    askmessage MEDIUMTEXT NOT NULL,
    approved SMALLINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username, jid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE rostergroups (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    jid VARCHAR(250) NOT NULL,
    grp MEDIUMTEXT NOT NULL,
    INDEX i_rosterg_server_user_jid (server, username, jid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE roster_version (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    version MEDIUMTEXT NOT NULL,
    PRIMARY KEY (server, username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE vcard (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    vcard MEDIUMBLOB NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE private_storage (
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    namespace VARCHAR(250) NOT NULL,
    data MEDIUMBLOB NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (server, username, namespace)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE offline_message (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    timestamp BIGINT NOT NULL,
    expire BIGINT,
    server VARCHAR(250) NOT NULL,
    username VARCHAR(250) NOT NULL,
    from_jid MEDIUMTEXT NOT NULL,
    packet MEDIUMBLOB NOT NULL,
    permanent_fields MEDIUMBLOB,
    INDEX i_offline_message (server, username, id),
    INDEX i_offline_message_expire (expire)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE mongoose_cluster_id (
    k VARCHAR(50) PRIMARY KEY,
    v MEDIUMTEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

CREATE TABLE discovery_nodes (
    cluster_name VARCHAR(250) NOT NULL,
    node_name VARCHAR(250) NOT NULL,
    node_num INT UNSIGNED NOT NULL,
    address VARCHAR(250) NOT NULL DEFAULT '',
    updated_timestamp BIGINT NOT NULL,
    PRIMARY KEY (node_name),
    UNIQUE INDEX i_discovery_nodes_node_num (cluster_name, node_num)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC;

INSERT INTO schema_version (version, description, applied_at)
    VALUES (2, 'initial schema', UNIX_TIMESTAMP());
