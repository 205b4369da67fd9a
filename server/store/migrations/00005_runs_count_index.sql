-- Counting a job's runs by state, and its pending runs never sent, from the
-- index alone (the dispatcher does it on every walk).

-- +goose Up
CREATE INDEX runs_job_dispatch ON runs (job_id, state, dispatched_at, seq);

-- +goose Down
DROP INDEX runs_job_dispatch;
