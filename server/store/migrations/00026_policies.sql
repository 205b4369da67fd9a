-- Checks and policies (issue 17, part 2). A policy attaches a check (a
-- built-in such as builtin:disk-space, or a signed plugin's Check) to the
-- agents a selector (target) or a site names, with parameters and an
-- interval, and optionally a fix run by the agent when the check fails
-- (self-heal), within limits.
--
-- check_states holds the last known state of each (agent, policy); it is
-- written only when the state changes (a check that keeps passing costs no
-- write). check_events is the history of those changes, one row per result
-- the agent sent, keyed by the result's ID so that a result delivered twice
-- is stored once. policy_fixes records every self-heal the relay allowed:
-- keyed by the agent's request ID (a repeated request gets the same job) and
-- counted per site and hour for the site limit.

-- +goose Up
CREATE TABLE policies (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    target              TEXT NOT NULL DEFAULT '',
    site_id             TEXT NOT NULL DEFAULT '',
    check_name          TEXT NOT NULL,
    params              TEXT NOT NULL DEFAULT '{}',
    interval_s          INTEGER NOT NULL,
    fix                 TEXT NOT NULL DEFAULT '',
    fix_params          TEXT NOT NULL DEFAULT '{}',
    max_fixes_day       INTEGER NOT NULL DEFAULT 3,
    max_fixes_site_hour INTEGER NOT NULL DEFAULT 10,
    created_by          TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMP NOT NULL
);

CREATE TABLE check_states (
    agent_id   TEXT NOT NULL,
    policy_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    summary    TEXT NOT NULL DEFAULT '',
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (agent_id, policy_id)
);

CREATE TABLE check_events (
    id        TEXT PRIMARY KEY,
    agent_id  TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    state     TEXT NOT NULL,
    summary   TEXT NOT NULL DEFAULT '',
    fix       TEXT NOT NULL DEFAULT '',
    at        TIMESTAMP NOT NULL
);
CREATE INDEX check_events_agent ON check_events (agent_id, at);

CREATE TABLE policy_fixes (
    request_id TEXT PRIMARY KEY,
    policy_id  TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX policy_fixes_site ON policy_fixes (site_id, created_at);
CREATE INDEX policy_fixes_agent ON policy_fixes (agent_id, policy_id, created_at);

-- +goose Down
DROP TABLE policy_fixes;
DROP TABLE check_events;
DROP TABLE check_states;
DROP TABLE policies;
