package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/patchbay/patchbay/server/store"
)

// A tier of relays (a shared PostgreSQL store) keeps every recording in the
// database too, in chunks as it arrives, so that any relay serves it, also
// once the relay that carried the session is gone. The database, not
// JetStream: it is the one store every relay of a tier already has and
// whose durability the operator manages; an embedded NATS keeps its
// streams on one relay's disk.
const (
	dbChunk      = 256 << 10       // a chunk row holds at most this much
	dbChunkEvery = 1 * time.Second // a partial chunk is stored once it is this old
)

// dbRecorder copies a recording into the database while it is written to
// the local file. A database error stops the copy (logged once) without
// failing the local recording: Write never fails.
type dbRecorder struct {
	b     *Broker
	id    string
	pos   int64 // bytes stored
	buf   []byte
	since time.Time // when buf got its first byte
	err   error
}

func (r *dbRecorder) Write(p []byte) (int, error) {
	if r.err != nil {
		return len(p), nil
	}
	if len(r.buf) == 0 {
		r.since = time.Now()
	}
	r.buf = append(r.buf, p...)
	if len(r.buf) >= dbChunk || time.Since(r.since) >= dbChunkEvery {
		r.flush()
	}
	return len(p), nil
}

// flush stores what is buffered as one or more chunks.
func (r *dbRecorder) flush() {
	for len(r.buf) > 0 && r.err == nil {
		n := min(len(r.buf), dbChunk)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r.err = r.b.cfg.Store.AppendRecordingChunk(ctx, r.id, r.pos, r.buf[:n])
		cancel()
		if r.err != nil {
			r.b.cfg.Log.Error().Err(r.err).Str("session_id", r.id).Int64("stored", r.pos).
				Msg("store the recording in the database: the rest is only on this relay")
			return
		}
		r.pos += int64(n)
		r.buf = r.buf[n:]
	}
	r.buf = r.buf[:0]
}

// OpenRecording opens session id's recording: this relay's file, else, in
// a tier, the copy in the database; os.ErrNotExist when there is none.
func (b *Broker) OpenRecording(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	f, err := os.Open(b.RecordingPath(id))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !b.cfg.Store.Shared() {
		return f, err
	}
	size, err := b.cfg.Store.RecordingStoredSize(ctx, id)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("recording of session %s: %w", id, os.ErrNotExist)
	}
	return &dbRecording{ctx: ctx, st: b.cfg.Store, id: id, size: size}, nil
}

// dbRecording reads a recording from the database one chunk at a time.
type dbRecording struct {
	ctx   context.Context
	st    *store.Store
	id    string
	size  int64
	pos   int64
	start int64  // where data starts in the recording
	data  []byte // the chunk read last
}

func (r *dbRecording) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos < r.start || r.pos >= r.start+int64(len(r.data)) {
		start, data, err := r.st.RecordingChunkAt(r.ctx, r.id, r.pos)
		if err != nil {
			return 0, err
		}
		r.start, r.data = start, data
	}
	n := copy(p, r.data[r.pos-r.start:])
	r.pos += int64(n)
	return n, nil
}

func (r *dbRecording) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = offset
	return offset, nil
}

func (r *dbRecording) Close() error { return nil }
