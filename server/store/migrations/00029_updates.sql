-- Pending updates and patch compliance (issue 17, parts 1 and 6), and the
-- restart wish of patch-policy jobs (part 4).
--
-- agent_update_checks holds, per agent, the last patchinstall run that
-- reported its pending updates: when, by which package manager, whether the
-- check looked at security updates only, and the counts (security -1: the
-- manager does not classify updates). agent_updates is that run's list,
-- replaced whole by the next one (never appended).
--
-- jobs.reboot is what a patch policy's job asks of a restart its fix
-- requires: '' (nothing: the endpoint's policy alone), ask, never or
-- force-in-window; the relay sends it with each run (wire.RunReboot).

-- +goose Up
CREATE TABLE agent_update_checks (
    agent_id      TEXT PRIMARY KEY,
    checked_at    TIMESTAMP NOT NULL,
    run_id        TEXT NOT NULL DEFAULT '',
    manager       TEXT NOT NULL DEFAULT '',
    security_only BOOLEAN NOT NULL DEFAULT FALSE,
    pending       INTEGER NOT NULL DEFAULT 0,
    security      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE agent_updates (
    agent_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    arch         TEXT NOT NULL DEFAULT '',
    from_version TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    security     BOOLEAN NOT NULL DEFAULT FALSE,
    category     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (agent_id, name, arch)
);

ALTER TABLE jobs ADD COLUMN reboot TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE jobs DROP COLUMN reboot;
DROP TABLE agent_updates;
DROP TABLE agent_update_checks;
