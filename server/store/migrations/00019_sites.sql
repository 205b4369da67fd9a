-- Organisations and their sites (issue 15, part 3): an MSP's customers, a
-- company's offices. Every agent belongs to exactly one site, set by the
-- enrollment token it enrolled with and changed only by an admin. A person
-- reaches the sites they are granted (user_sites; site_id '*' grants every
-- site); an API token without a user carries its own grants (api_tokens.sites,
-- a JSON list, ["*"] for every site). Admins reach every site.
--
-- The default organisation and site have fixed IDs so that the rows that
-- existed before sites (agents, enrollment tokens, sessions) land in them,
-- and the people and tokens of before keep reaching everything.
--
-- Jobs may span sites: job_sites lists the sites of a job's agents, and a
-- person sees a job only when it holds every one of them. Audit records
-- carry the site they are about (audit_log.site_id, taken from the hashed
-- detail "site"; '' for relay-wide records, seen only by those who reach
-- every site). Catalog items are published to every site (["*"]) or to a
-- list of sites.

-- +goose Up
CREATE TABLE organisations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organisations (id),
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);

INSERT INTO organisations (id, name, created_at)
    VALUES ('00000000-0000-7000-8000-000000000001', 'default', CURRENT_TIMESTAMP);
INSERT INTO sites (id, org_id, name, created_at)
    VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'default', CURRENT_TIMESTAMP);

ALTER TABLE agents ADD COLUMN site_id TEXT NOT NULL DEFAULT '00000000-0000-7000-8000-000000000002';
CREATE INDEX agents_site ON agents (site_id, id);
ALTER TABLE enroll_tokens ADD COLUMN site_id TEXT NOT NULL DEFAULT '00000000-0000-7000-8000-000000000002';
ALTER TABLE sessions ADD COLUMN site_id TEXT NOT NULL DEFAULT '00000000-0000-7000-8000-000000000002';
CREATE INDEX sessions_site ON sessions (site_id, id);
ALTER TABLE api_tokens ADD COLUMN sites TEXT NOT NULL DEFAULT '["*"]';
ALTER TABLE audit_log ADD COLUMN site_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_site ON audit_log (site_id, seq);
ALTER TABLE artifacts ADD COLUMN sites TEXT NOT NULL DEFAULT '["*"]';

CREATE TABLE user_sites (
    user_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    PRIMARY KEY (user_id, site_id)
);
INSERT INTO user_sites (user_id, site_id) SELECT id, '*' FROM users;

CREATE TABLE job_sites (
    job_id  TEXT NOT NULL,
    site_id TEXT NOT NULL,
    PRIMARY KEY (job_id, site_id)
);
INSERT INTO job_sites (job_id, site_id) SELECT id, '00000000-0000-7000-8000-000000000002' FROM jobs;

-- +goose Down
DROP TABLE job_sites;
DROP TABLE user_sites;
ALTER TABLE artifacts DROP COLUMN sites;
DROP INDEX audit_log_site;
ALTER TABLE audit_log DROP COLUMN site_id;
ALTER TABLE api_tokens DROP COLUMN sites;
DROP INDEX sessions_site;
ALTER TABLE sessions DROP COLUMN site_id;
ALTER TABLE enroll_tokens DROP COLUMN site_id;
DROP INDEX agents_site;
ALTER TABLE agents DROP COLUMN site_id;
DROP TABLE sites;
DROP TABLE organisations;
