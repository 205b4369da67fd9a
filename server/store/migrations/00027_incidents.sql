-- Incidents and known fixes (issue 17, part 5). An incident is about one
-- site (site_id: scoped people see their sites' incidents only) and some
-- of its agents (agents: a JSON list of IDs). Notes are append-only
-- (incident_notes: author and time, never updated); links tie an incident
-- to sessions, jobs and alerts (kind, ref_id), each once.
--
-- A known fix links a symptom (a check name, and/or an error text pattern:
-- a case-insensitive substring or a Go regexp) to a catalog plugin or
-- script with parameters (params: a JSON object) and a description in
-- Markdown. Known fixes are the team's, not a site's. Portable SQL: the
-- same text runs on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    ticket       TEXT NOT NULL DEFAULT '',
    site_id      TEXT NOT NULL,
    agents       TEXT NOT NULL DEFAULT '[]',
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL,
    resolution   TEXT NOT NULL DEFAULT '',
    known_fix    TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    resolved_at  TIMESTAMP,
    resolved_by  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incidents_state_site ON incidents (state, site_id);

CREATE TABLE incident_notes (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX incident_notes_incident ON incident_notes (incident_id, created_at);

CREATE TABLE incident_links (
    incident_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ref_id      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (incident_id, kind, ref_id)
);

CREATE TABLE known_fixes (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL DEFAULT '',
    check_name   TEXT NOT NULL DEFAULT '',
    pattern      TEXT NOT NULL DEFAULT '',
    pattern_kind TEXT NOT NULL DEFAULT '',
    plugin       TEXT NOT NULL,
    params       TEXT NOT NULL DEFAULT '{}',
    description  TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE known_fixes;
DROP TABLE incident_links;
DROP TABLE incident_notes;
DROP TABLE incidents;
