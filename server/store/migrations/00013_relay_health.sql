-- /healthz writes here (at most once a second) to prove that the database
-- still takes writes: a full disk or a read-only database makes the relay
-- report itself degraded instead of "ok". One row per relay (its name), so
-- several relays sharing a database do not contend on one row.

-- +goose Up
CREATE TABLE relay_health (
    relay      TEXT PRIMARY KEY,
    checked_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE relay_health;
