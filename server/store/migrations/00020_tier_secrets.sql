-- The secrets a tier of relays shares (issue 14, part 3): the agent CA, the
-- SSH user and host CAs and the TLS session ticket key, one row per file of
-- a relay's data directory (name: ca.crt, ca.key, ssh_user_ca, ...). The
-- first relay of a tier on PostgreSQL stores them; every other relay takes
-- them from here instead of making its own (server/tiersecrets). value is
-- base64 of the file encrypted with AES-256-GCM under the operator's tier
-- key (--tier-key-file), nonce first; key_id names that key (a hash of it,
-- not the key) so that a relay given another key says so. A dump of the
-- database alone does not give the CA. A relay on SQLite never uses it.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE tier_secrets (
    name       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE tier_secrets;
