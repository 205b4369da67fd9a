-- Alerts (issue 17, part 3). An alert is about one agent (or none: a
-- halted job) and is deduplicated by dedup_key (kind, agent, check name):
-- while one is not resolved, raising it again bumps count and last_seen
-- instead of adding a row (the partial unique index below enforces it on
-- both engines). site_id is the agent's site when it was opened ('' for
-- alerts about no agent: only callers that reach every site see them).
--
-- alert_routes send alerts of a site ('*': every site) at or above a
-- severity to a webhook or an SMTP server. alert_outbox holds what is to
-- be delivered, one row per (alert event, route), written in the same
-- transaction as the event: a relay that restarts, or a receiver that is
-- down, loses nothing. A relay claims a row (claim_token, claim_expires,
-- by the database's clock) before an attempt, so one relay of a tier
-- makes each attempt. Portable SQL: the same text runs on SQLite and
-- PostgreSQL.

-- +goose Up
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    agent_id    TEXT NOT NULL DEFAULT '',
    check_name  TEXT NOT NULL DEFAULT '',
    dedup_key   TEXT NOT NULL,
    site_id     TEXT NOT NULL DEFAULT '',
    severity    TEXT NOT NULL,
    state       TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '',
    count       INTEGER NOT NULL DEFAULT 1,
    opened_at   TIMESTAMP NOT NULL,
    last_seen   TIMESTAMP NOT NULL,
    acked_at    TIMESTAMP,
    acked_by    TEXT NOT NULL DEFAULT '',
    resolved_at TIMESTAMP,
    resolved_by TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_live_key ON alerts (dedup_key) WHERE state <> 'resolved';
CREATE INDEX alerts_state_site ON alerts (state, site_id);

CREATE TABLE alert_routes (
    id           TEXT PRIMARY KEY,
    site_id      TEXT NOT NULL,
    min_severity TEXT NOT NULL,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    secret       TEXT NOT NULL DEFAULT '',
    mail_from    TEXT NOT NULL DEFAULT '',
    mail_to      TEXT NOT NULL DEFAULT '',
    smtp_user    TEXT NOT NULL DEFAULT '',
    ca_pem       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE alert_outbox (
    id            TEXT PRIMARY KEY,
    route_id      TEXT NOT NULL,
    alert_id      TEXT NOT NULL,
    event         TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    next_attempt  TIMESTAMP NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claim_token   TEXT NOT NULL DEFAULT '',
    claim_expires TIMESTAMP,
    last_error    TEXT NOT NULL DEFAULT '',
    done          INTEGER NOT NULL DEFAULT 0,
    done_at       TIMESTAMP
);
CREATE INDEX alert_outbox_due ON alert_outbox (done, next_attempt);

-- +goose Down
DROP TABLE alert_outbox;
DROP TABLE alert_routes;
DROP TABLE alerts;
