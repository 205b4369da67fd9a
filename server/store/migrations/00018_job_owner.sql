-- Who started a job, for the rules that depend on it: a technician cancels
-- only their own jobs (an admin any), and an admin may stop the running
-- jobs of a user they disable. created_by stays the audit-style actor text;
-- these are the API token's ID and its user's ID ('' for jobs from before,
-- and for tokens without a user).

-- +goose Up
ALTER TABLE jobs ADD COLUMN created_by_token TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN created_by_user TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_created_by_user ON jobs (created_by_user, state);

-- +goose Down
DROP INDEX jobs_created_by_user;
ALTER TABLE jobs DROP COLUMN created_by_user;
ALTER TABLE jobs DROP COLUMN created_by_token;
