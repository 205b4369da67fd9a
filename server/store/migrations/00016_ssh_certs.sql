-- SSH user certificates the relay issued to technicians, so that revoking
-- an API token (or disabling a user) can revoke them too: the relay tells
-- every agent the revoked serials, and agents refuse them (agent/sshd).
--
-- serial is the certificate's random uint64 in decimal TEXT: PostgreSQL's
-- BIGINT is signed and SQLite's INTEGER too, so half the serials would not
-- fit as numbers without a sign trick. token_id is the API token that asked
-- for the certificate. A row is only useful until valid_before (the
-- certificate is refused as expired after it); rows past it are deleted
-- when new certificates are issued. revoked_at is NULL until revoked.
--
-- sessions.token_id is the API token that opened a session (the console's
-- sessions name the token behind the browser session), so that revoking it
-- ends the session. '' for sessions recorded before this migration.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE ssh_certs (
    serial       TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    token_id     TEXT NOT NULL,
    issued_at    TIMESTAMP NOT NULL,
    valid_before TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);
CREATE INDEX ssh_certs_token ON ssh_certs (token_id);
CREATE INDEX ssh_certs_valid_before ON ssh_certs (valid_before);
CREATE INDEX ssh_certs_revoked ON ssh_certs (revoked_at) WHERE revoked_at IS NOT NULL;

ALTER TABLE sessions ADD COLUMN token_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN token_id;
DROP TABLE ssh_certs;
