-- The dispatcher keeps each open job's counts in memory (server/jobs), so
-- the runs table no longer needs indexes that count by state; each index on
-- state was rewritten by every dispatch and every result.
--   runs_job_seq:      a job's runs in seq order (paging results, loading a
--                      job's counts when the relay starts).
--   runs_undispatched: the runs never sent, per job in seq order; a run
--                      leaves it once, when it is dispatched (or finished
--                      without being sent).
-- jobs.counts holds a job's final counts by state (JSON), written when the
-- job ends, so an ended job is shown without counting its runs ('' for jobs
-- that ended before this migration: their runs are counted).

-- +goose Up
DROP INDEX runs_job;
DROP INDEX runs_job_dispatch;
CREATE INDEX runs_job_seq ON runs (job_id, seq);
CREATE INDEX runs_undispatched ON runs (job_id, seq) WHERE state = 'pending' AND dispatched_at IS NULL;
ALTER TABLE jobs ADD COLUMN counts TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN counts;
DROP INDEX runs_undispatched;
DROP INDEX runs_job_seq;
CREATE INDEX runs_job ON runs (job_id, state, seq);
CREATE INDEX runs_job_dispatch ON runs (job_id, state, dispatched_at, seq);
