-- The consent decision on a run's fix, when the plugin or script needs
-- consent: JSON {"approved","by","message","mode","at"}; '' when nobody was
-- asked. The agent-signed receipt of the decision is kept in the audit log.

-- +goose Up
ALTER TABLE runs ADD COLUMN consent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN consent;
