-- An agent's runs that are not final (sent again when it reconnects) come
-- from a partial index that holds only those: a run enters it when the job
-- is created and leaves it once, when it ends. The index it replaces held
-- every run ever made, keyed by state, so each result moved an entry within
-- an index that grew with every job (and, past SQLite's page cache, read
-- its pages from disk).

-- +goose Up
DROP INDEX runs_agent;
CREATE INDEX runs_agent_open ON runs (agent_id) WHERE state IN ('pending', 'running');

-- +goose Down
DROP INDEX runs_agent_open;
CREATE INDEX runs_agent ON runs (agent_id, state);
