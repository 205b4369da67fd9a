-- Relays of a tier (issue 14, part 4). Exactly one relay schedules a job
-- at a time: the one whose node ID is in lease_node while lease_expires
-- lies ahead. The holder renews the lease every few seconds; another relay
-- takes it over once it has expired (its holder died). A relay alone (no
-- NATS) takes no lease: it schedules every job.
--
-- A session belongs to the relay that brokers it (sessions.node, the
-- relay's stable ID; '' for sessions from before): a relay that starts
-- ends only its own sessions left open, never another live relay's.

-- +goose Up
ALTER TABLE jobs ADD COLUMN lease_node TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_expires TIMESTAMP;
ALTER TABLE sessions ADD COLUMN node TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN node;
ALTER TABLE jobs DROP COLUMN lease_expires;
ALTER TABLE jobs DROP COLUMN lease_node;
