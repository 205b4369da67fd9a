-- Session recordings in the database, for a tier of relays (issue 14,
-- part 3): the relay that carries a session writes its recording to a file
-- of its data directory, as a relay alone does, and, on PostgreSQL, also
-- here, in chunks as they arrive, so that any relay of the tier serves it,
-- also after the relay that recorded it is gone. pos is the chunk's offset
-- in the recording. A relay on SQLite never uses it.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE recording_chunks (
    session_id TEXT NOT NULL,
    pos        BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (session_id, pos)
);

-- +goose Down
DROP TABLE recording_chunks;
