-- Web console: one-time login links and browser sessions. Both are stored by
-- the SHA-256 of their secret (the secret itself is only ever in the link
-- or the cookie), and both name the API token whose identity and role they
-- carry by that token's hash: the console's requests are checked against the
-- token on every request, so revoking the token ends its browser sessions.
-- They live in the store, not in the relay's memory, so a relay restart
-- keeps people logged in and several relays share them.
-- method is how the session was opened (link, token; later password, oidc).

-- +goose Up
CREATE TABLE console_links (
    hash       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

CREATE TABLE console_sessions (
    hash         TEXT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL,
    method       TEXT NOT NULL,
    remote_addr  TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
DROP TABLE console_links;
