-- Single sign-on (OpenID Connect). oidc_identities links a provider's
-- identity (issuer and subject: the stable ID the provider gives a person,
-- never the email, which can change hands) to the Patchbay user it created
-- at the first sign-in; a later sign-in finds the user by it. The groups and
-- email seen at the last sign-in are kept for admins (JSON list, text).
-- sso_handoffs hold the one-time codes that hand a CLI sign-in (patchbay
-- login --sso) from the browser back to the CLI: only the code's SHA-256 is
-- stored, with the S256 challenge of the verifier the CLI must present, for
-- 60 seconds, usable once.

-- +goose Up
CREATE TABLE oidc_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    groups_seen   TEXT NOT NULL DEFAULT '[]',
    created_at    TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

CREATE TABLE sso_handoffs (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    challenge  TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE sso_handoffs;
DROP INDEX oidc_identities_user;
DROP TABLE oidc_identities;
