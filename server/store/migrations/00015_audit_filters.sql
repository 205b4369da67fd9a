-- Audit for the security officer (issue 15, part 6).
--
-- audit_log_action serves "patchbay audit list --action X" and the console's
-- action filter: records of one action in seq order, read a page at a time,
-- without walking the whole log. The other filters (actor and agent
-- substrings, time) walk the log in seq order from the page's cursor, which
-- stays linear for an export of any size (an index on the time would make
-- each page of an export re-read everything after its start).
--
-- audit_forward holds each audit forwarder's cursor (server/auditfwd): the
-- seq of the last record it has delivered to its receiver, named by the
-- receiver's URL. Kept in the database, not in memory, so a relay restart
-- resumes where it stopped and a receiver outage is caught up.

-- +goose Up
CREATE INDEX audit_log_action ON audit_log (action, seq);

CREATE TABLE audit_forward (
    name       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE audit_forward;
DROP INDEX audit_log_action;
