-- --max-failures P%: the share of the runs finished so far (in basis points,
-- 0..10000) that may fail before the job halts; -1 when the limit is a
-- count (jobs.max_failures) or there is none.

-- +goose Up
ALTER TABLE jobs ADD COLUMN max_failures_bp INTEGER NOT NULL DEFAULT -1;

-- +goose Down
ALTER TABLE jobs DROP COLUMN max_failures_bp;
