-- The catalog of signed plugins and scripts, content-addressed by the lower-case hex
-- SHA-256 of the file. Versions are immutable: (kind, name, version, os, arch) names
-- one file; publishing other bytes under it is refused (see store/catalog.go for the
-- extra rule on scripts' OS lists).
--
-- Dialects: the only type that is not plain SQL is the content column. BYTEA is
-- PostgreSQL's binary type; SQLite accepts any type name, and "BYTEA" gets NUMERIC
-- affinity there, which only converts TEXT values: the []byte the store writes is bound
-- as a BLOB and kept byte for byte (store tests check the round trip). So the same
-- statement works on both engines.
--
-- The content lives in its own table so that listing the catalog never reads blobs.

-- +goose Up
CREATE TABLE artifacts (
    sha256             TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,              -- 'plugin' | 'script'
    name               TEXT NOT NULL,
    version            TEXT NOT NULL,
    os                 TEXT NOT NULL DEFAULT '',   -- plugins: GOOS; scripts: comma list, '' = any
    arch               TEXT NOT NULL DEFAULT '',   -- plugins: GOARCH; scripts: ''
    size               BIGINT NOT NULL,
    manifest           TEXT NOT NULL,              -- JSON of sdk.Manifest
    has_manifest       BOOLEAN NOT NULL DEFAULT TRUE, -- FALSE: a script without a header manifest
    signature          TEXT NOT NULL,              -- armored SSHSIG
    signer_fingerprint TEXT NOT NULL,
    signer_key_type    TEXT NOT NULL,
    published_by       TEXT NOT NULL,
    published_at       TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX artifacts_identity ON artifacts (kind, name, version, os, arch);

CREATE TABLE artifact_blobs (
    sha256  TEXT PRIMARY KEY REFERENCES artifacts (sha256),
    content BYTEA NOT NULL
);

-- +goose Down
DROP TABLE artifact_blobs;
DROP TABLE artifacts;
