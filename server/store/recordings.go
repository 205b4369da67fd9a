package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AppendRecordingChunk stores bytes [pos, pos+len(data)) of session id's
// recording (a tier shares recordings through the database).
func (s *Store) AppendRecordingChunk(ctx context.Context, id string, pos int64, data []byte) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO recording_chunks (session_id, pos, data) VALUES ($1, $2, $3)`, id, pos, data); err != nil {
		return fmt.Errorf("session %s recording chunk at %d: %w", id, pos, err)
	}
	return nil
}

// RecordingChunkAt returns the stored chunk of session id's recording that
// holds byte pos, and where it starts; ErrNotFound past the end.
func (s *Store) RecordingChunkAt(ctx context.Context, id string, pos int64) (start int64, data []byte, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT pos, data FROM recording_chunks WHERE session_id = $1 AND pos <= $2 ORDER BY pos DESC LIMIT 1`,
		id, pos).Scan(&start, &data)
	if errors.Is(err, sql.ErrNoRows) || err == nil && start+int64(len(data)) <= pos {
		return 0, nil, fmt.Errorf("session %s recording at %d: %w", id, pos, ErrNotFound)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("session %s recording at %d: %w", id, pos, err)
	}
	return start, data, nil
}

// RecordingStoredSize is how many bytes of session id's recording the
// database holds (0 for none).
func (s *Store) RecordingStoredSize(ctx context.Context, id string) (int64, error) {
	var pos, n int64
	err := s.db.QueryRowContext(ctx, `SELECT pos, length(data) FROM recording_chunks WHERE session_id = $1 ORDER BY pos DESC LIMIT 1`, id).Scan(&pos, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session %s recording size: %w", id, err)
	}
	return pos + n, nil
}
