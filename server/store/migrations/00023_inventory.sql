-- Inventory (issue 17, part 1): hardware, installed software and its
-- history of changes, per agent.
--
-- agent_hardware: one row per agent that reported hardware. disks is JSON
-- TEXT; disk_min_free and disk_min_free_ppm are the smallest free space of
-- its disks in bytes and in parts per million of the disk's size, kept so
-- that disk.free selectors are a plain comparison. hash is a digest of the
-- hardware columns: an unchanged report writes nothing. software_hash is
-- the hash of the software list stored in agent_software.
--
-- agent_software: one row per installed package. name_key is the name in
-- lower case (what software= compares); version_key is the version encoded
-- so that comparing keys as text (lower-case hex digits only, so any
-- collation orders them alike) is the Debian-ish version order
-- (store.VersionKey).
--
-- agent_software_history: what changed, written by diffing a new list
-- against the stored one: change is installed, removed or upgraded.

-- +goose Up
CREATE TABLE agent_hardware (
    agent_id          TEXT PRIMARY KEY,
    cpu_model         TEXT NOT NULL DEFAULT '',
    cpu_count         INTEGER NOT NULL DEFAULT 0,
    memory_bytes      BIGINT NOT NULL DEFAULT 0,
    vendor            TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    serial            TEXT NOT NULL DEFAULT '',
    firmware          TEXT NOT NULL DEFAULT '',
    disks             TEXT NOT NULL DEFAULT '[]',
    disk_min_free     BIGINT,
    disk_min_free_ppm BIGINT,
    boot_time         TIMESTAMP,
    hash              TEXT NOT NULL DEFAULT '',
    updated_at        TIMESTAMP,
    software_hash     TEXT NOT NULL DEFAULT '',
    software_count    INTEGER NOT NULL DEFAULT 0,
    software_at       TIMESTAMP
);
CREATE INDEX agent_hardware_memory ON agent_hardware (memory_bytes);

CREATE TABLE agent_software (
    agent_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    name_key    TEXT NOT NULL,
    version_key TEXT NOT NULL,
    PRIMARY KEY (agent_id, name, version, source)
);
CREATE INDEX agent_software_name_version ON agent_software (name_key, version_key, agent_id);

CREATE TABLE agent_software_history (
    agent_id    TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    change      TEXT NOT NULL,
    name        TEXT NOT NULL,
    old_version TEXT NOT NULL DEFAULT '',
    new_version TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_software_history_agent ON agent_software_history (agent_id, at);

-- +goose Down
DROP TABLE agent_software_history;
DROP TABLE agent_software;
DROP TABLE agent_hardware;
