-- Schedules and maintenance windows (issue 17, part 4).
--
-- A maintenance window belongs to a site: it opens at each fire time of a
-- cron spec read in a time zone and stays open duration_s seconds.
--
-- A schedule creates an ordinary job (request: the job request as JSON, as
-- POST /v1/jobs takes it) at each fire time of its cron spec, as its owner
-- (the token and user that created it; owner_role and owner_sites are the
-- token's role and grants when it has no user). next_fire is the next fire
-- time in Unix seconds: a relay claims a firing with
-- UPDATE schedules SET next_fire = NEXT WHERE id = ID AND next_fire = THIS
-- in the transaction that creates its job, so each firing makes at most one
-- job across restarts and the relays of a tier. kind is 'job' or
-- 'patch-policy'; a patch policy also has site_id and reboot.
--
-- jobs.maint_window is the window a job runs in, as JSON ('' none): runs
-- start only while it is open. jobs.schedule_id is the schedule that made it.

-- +goose Up
CREATE TABLE maint_windows (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    cron       TEXT NOT NULL,
    tz         TEXT NOT NULL,
    duration_s BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, name)
);

CREATE TABLE schedules (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    cron             TEXT NOT NULL,
    tz               TEXT NOT NULL,
    window_id        TEXT NOT NULL DEFAULT '',
    site_id          TEXT NOT NULL DEFAULT '',
    reboot           TEXT NOT NULL DEFAULT '',
    request          TEXT NOT NULL,
    paused           BOOLEAN NOT NULL DEFAULT FALSE,
    next_fire        BIGINT NOT NULL,
    last_fire        BIGINT NOT NULL DEFAULT 0,
    last_job         TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL,
    created_by_token TEXT NOT NULL DEFAULT '',
    created_by_user  TEXT NOT NULL DEFAULT '',
    owner_role       TEXT NOT NULL DEFAULT '',
    owner_sites      TEXT NOT NULL DEFAULT '[]',
    created_at       TIMESTAMP NOT NULL
);
CREATE INDEX schedules_next_fire ON schedules (next_fire);

ALTER TABLE jobs ADD COLUMN maint_window TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN schedule_id;
ALTER TABLE jobs DROP COLUMN maint_window;
DROP INDEX schedules_next_fire;
DROP TABLE schedules;
DROP TABLE maint_windows;
