-- Interactive sessions: one row per request a technician made, whatever
-- came of it. state: requested -> approved -> ended, or requested -> denied
-- (the agent's policy or its user said no, or nobody answered) or failed
-- (the agent went offline, the relay restarted). The recording, when the
-- session had a PTY, is a file under DATA/recordings named by the session ID.

-- +goose Up
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL,
    hostname        TEXT NOT NULL DEFAULT '',
    technician      TEXT NOT NULL,
    actor           TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    capabilities    TEXT NOT NULL DEFAULT '[]',
    granted         TEXT NOT NULL DEFAULT '[]',
    state           TEXT NOT NULL,
    consent_mode    TEXT NOT NULL DEFAULT '',
    consent_backend TEXT NOT NULL DEFAULT '',
    consent_by      TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    end_by          TEXT NOT NULL DEFAULT '',
    end_reason      TEXT NOT NULL DEFAULT '',
    recording_size  BIGINT NOT NULL DEFAULT 0,
    requested_at    TIMESTAMP NOT NULL,
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP
);
CREATE INDEX sessions_agent ON sessions (agent_id, id);

-- +goose Down
DROP TABLE sessions;
