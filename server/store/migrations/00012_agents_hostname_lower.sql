-- Agents are named by hostname case-insensitively (patchbay agents show
-- PC-042, patchbay ssh pc-042): an index on the lower-case hostname keeps
-- that lookup a few rows at any fleet size. Both SQLite and PostgreSQL index
-- expressions.

-- +goose Up
CREATE INDEX agents_hostname_lower ON agents (LOWER(hostname));

-- +goose Down
DROP INDEX agents_hostname_lower;
