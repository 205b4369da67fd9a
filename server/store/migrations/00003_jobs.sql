-- Jobs (one plugin run across a set of agents) and runs (one job on one agent).
-- A run's state only moves forward: pending -> running -> a final state
-- (succeeded, failed, skipped, cancelled, halted, expired). dispatched_at
-- is when the relay first sent the run; a run dispatched but not final is
-- "in flight" and is sent again whenever its agent reconnects.

-- +goose Up
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    plugin          TEXT NOT NULL,
    plugin_version  TEXT NOT NULL,
    script          TEXT NOT NULL DEFAULT '',
    script_sha256   TEXT NOT NULL DEFAULT '',
    script_version  TEXT NOT NULL DEFAULT '',
    script_size     BIGINT NOT NULL DEFAULT 0,
    params          TEXT NOT NULL DEFAULT '{}',
    target          TEXT NOT NULL DEFAULT '',
    dry_run         BOOLEAN NOT NULL DEFAULT FALSE,
    concurrency     INTEGER NOT NULL DEFAULT 0,
    canary          INTEGER NOT NULL DEFAULT 0,
    max_failures    INTEGER NOT NULL DEFAULT -1,
    timeout_ms      BIGINT NOT NULL,
    allow_downgrade BOOLEAN NOT NULL DEFAULT FALSE,
    reason          TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    total           INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP
);
CREATE INDEX jobs_state ON jobs (state, id);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    seq             INTEGER NOT NULL,
    agent_id        TEXT NOT NULL,
    hostname        TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    plugin_sha256   TEXT NOT NULL DEFAULT '',
    plugin_size     BIGINT NOT NULL DEFAULT 0,
    version         TEXT NOT NULL DEFAULT '',
    needed          BOOLEAN NOT NULL DEFAULT FALSE,
    changed         BOOLEAN NOT NULL DEFAULT FALSE,
    reboot_required BOOLEAN NOT NULL DEFAULT FALSE,
    summary         TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    details         TEXT NOT NULL DEFAULT '',
    output          TEXT NOT NULL DEFAULT '',
    signer          TEXT NOT NULL DEFAULT '',
    dispatched_at   TIMESTAMP,
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP
);
CREATE INDEX runs_job ON runs (job_id, state, seq);
CREATE INDEX runs_agent ON runs (agent_id, state);

-- +goose Down
DROP TABLE runs;
DROP TABLE jobs;
