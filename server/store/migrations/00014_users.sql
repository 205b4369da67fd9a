-- People: user accounts with a password (argon2id PHC string), an optional
-- TOTP second factor and recovery codes (JSON list of SHA-256 hashes). A
-- user owns API tokens (api_tokens.user_id; '' for tokens that belong to no
-- user, as before accounts existed: they keep working). kind tells a
-- session token minted by a password login ('session', or 'enrol' while the
-- user must still enrol TOTP) from an API token made for automation ('').
-- totp_pending holds a secret between enrol and its confirmation by a first
-- code; totp_last_step is the last accepted TOTP time step (a code at or
-- before it is refused: each code works once).
-- relay_settings holds relay-wide settings such as require_totp.

-- +goose Up
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL,
    password_hash   TEXT NOT NULL DEFAULT '',
    totp_secret     TEXT NOT NULL DEFAULT '',
    totp_pending    TEXT NOT NULL DEFAULT '',
    totp_last_step  BIGINT NOT NULL DEFAULT 0,
    recovery_hashes TEXT NOT NULL DEFAULT '[]',
    source          TEXT NOT NULL DEFAULT 'local',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    disabled_at     TIMESTAMP
);

ALTER TABLE api_tokens ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT '';
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE relay_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE relay_settings;
DROP INDEX api_tokens_user;
ALTER TABLE api_tokens DROP COLUMN kind;
ALTER TABLE api_tokens DROP COLUMN user_id;
DROP TABLE users;
