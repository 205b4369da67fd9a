-- Initial schema. Portable between SQLite and PostgreSQL: TEXT ids (UUIDs), TIMESTAMP
-- columns always written as UTC, maps and lists as JSON TEXT. NULL timestamps mean
-- "never" (not revoked, no expiry, not seen yet).

-- +goose Up
CREATE TABLE enroll_tokens (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    tags         TEXT NOT NULL DEFAULT '{}',
    uses_allowed INTEGER NOT NULL DEFAULT 0,
    uses         INTEGER NOT NULL DEFAULT 0,
    expires_at   TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    revoked_at   TIMESTAMP
);
CREATE INDEX enroll_tokens_created ON enroll_tokens (created_at, id);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL DEFAULT '',
    os          TEXT NOT NULL DEFAULT '',
    arch        TEXT NOT NULL DEFAULT '',
    os_version  TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    users       TEXT NOT NULL DEFAULT '[]',
    ips         TEXT NOT NULL DEFAULT '[]',
    tags        TEXT NOT NULL DEFAULT '{}',
    scoped_tags TEXT NOT NULL DEFAULT '{}',
    agent_tags  TEXT NOT NULL DEFAULT '{}',
    token_id    TEXT REFERENCES enroll_tokens (id),
    enrolled_at TIMESTAMP NOT NULL,
    first_seen  TIMESTAMP,
    last_seen   TIMESTAMP,
    revoked_at  TIMESTAMP
);
CREATE INDEX agents_hostname ON agents (hostname, id);
CREATE INDEX agents_token ON agents (token_id);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMP NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- audit_head holds exactly one row: the seq and hash of the last audit record. It is
-- updated in the same transaction as each append, so removing rows from the end of
-- audit_log is detected by comparing with it.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE agents;
DROP TABLE enroll_tokens;
