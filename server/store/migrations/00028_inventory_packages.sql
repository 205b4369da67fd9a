-- Inventory storage for fleets (issue 17, performance): each distinct
-- package (name, version, source) is stored once in software_packages, and
-- an agent's list is pairs of integers in agent_packages: (the agent's
-- inventory number, the package's id). A 19,000-agent fleet with 1,500
-- packages each was 28.5 million rows each carrying the agent's text UUID,
-- name, version and keys three times over (table, primary key, name index):
-- about 12 GB on SQLite; as pairs of small integers it is a tenth of that,
-- and the few hundred thousand distinct packages fit in any cache.
--
-- software_packages.id and agent_hardware.inv_no are assigned by the store
-- (the largest plus one, under the writer's lock); ids are never reused or
-- deleted, so a relay may cache them. name_key and version_key are as in
-- 00023 (store.VersionKey). agent_packages' second index answers software=
-- selectors: software_packages_key finds the package ids, then
-- agent_packages_package the agents holding them.
--
-- Existing lists are converted: packages numbered in (name, version,
-- source) order, agents in agent ID order. The history table is unchanged.

-- +goose Up
CREATE TABLE software_packages (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    name_key    TEXT NOT NULL,
    version_key TEXT NOT NULL
);
CREATE UNIQUE INDEX software_packages_nvs ON software_packages (name, version, source);
CREATE INDEX software_packages_key ON software_packages (name_key, version_key);

INSERT INTO software_packages (id, name, version, source, name_key, version_key)
SELECT ROW_NUMBER() OVER (ORDER BY name, version, source), name, version, source, MIN(name_key), MIN(version_key)
FROM agent_software GROUP BY name, version, source;

ALTER TABLE agent_hardware ADD COLUMN inv_no INTEGER;
CREATE TABLE inventory_numbers_tmp (agent_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO inventory_numbers_tmp (agent_id, n)
SELECT agent_id, ROW_NUMBER() OVER (ORDER BY agent_id) FROM agent_hardware;
UPDATE agent_hardware SET inv_no = (SELECT t.n FROM inventory_numbers_tmp t WHERE t.agent_id = agent_hardware.agent_id);
DROP TABLE inventory_numbers_tmp;
CREATE UNIQUE INDEX agent_hardware_inv_no ON agent_hardware (inv_no);

CREATE TABLE agent_packages (
    agent_no   INTEGER NOT NULL,
    package_id INTEGER NOT NULL,
    PRIMARY KEY (agent_no, package_id)
);
INSERT INTO agent_packages (agent_no, package_id)
SELECT h.inv_no, p.id FROM agent_software o
JOIN agent_hardware h ON h.agent_id = o.agent_id
JOIN software_packages p ON p.name = o.name AND p.version = o.version AND p.source = o.source;
CREATE INDEX agent_packages_package ON agent_packages (package_id, agent_no);
DROP TABLE agent_software;

-- +goose Down
CREATE TABLE agent_software (
    agent_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    name_key    TEXT NOT NULL,
    version_key TEXT NOT NULL,
    PRIMARY KEY (agent_id, name, version, source)
);
INSERT INTO agent_software (agent_id, name, version, source, name_key, version_key)
SELECT h.agent_id, p.name, p.version, p.source, p.name_key, p.version_key FROM agent_packages ap
JOIN agent_hardware h ON h.inv_no = ap.agent_no
JOIN software_packages p ON p.id = ap.package_id;
CREATE INDEX agent_software_name_version ON agent_software (name_key, version_key, agent_id);
DROP TABLE agent_packages;
DROP INDEX agent_hardware_inv_no;
ALTER TABLE agent_hardware DROP COLUMN inv_no;
DROP TABLE software_packages;
