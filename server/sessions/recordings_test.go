package sessions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/pgtest"
	"github.com/patchbay/patchbay/server/store"
)

var pg = pgtest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Close()
	os.Exit(code)
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRecordingFromDatabase: on a shared store, what a relay records is
// readable by another relay (another broker, another directory), whole, by
// range and after seeks; on SQLite nothing goes to the database.
func TestRecordingFromDatabase(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDB(t)
	a := New(Config{Store: openStore(t, url), RecordingsDir: t.TempDir(), Log: zerolog.Nop()})
	b := New(Config{Store: openStore(t, url), RecordingsDir: t.TempDir(), Log: zerolog.Nop()})
	defer a.Close()
	defer b.Close()

	data := make([]byte, 2*dbChunk+12345)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	rec := &dbRecorder{b: a, id: "s1"}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rand.N(40000))
		rec.Write(rest[:n])
		rest = rest[n:]
	}
	rec.flush()
	if rec.err != nil || rec.pos != int64(len(data)) {
		t.Fatalf("stored %d of %d bytes: %v", rec.pos, len(data), rec.err)
	}

	r, err := b.OpenRecording(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d recorded", len(got), err, len(data))
	}
	for _, at := range []int64{0, 1, dbChunk - 1, dbChunk, int64(len(data)) - 10} {
		if _, err := r.Seek(at, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := io.ReadFull(r, buf)
		if want := min(100, int64(len(data))-at); int64(n) != want || !bytes.Equal(buf[:n], data[at:at+want]) {
			t.Fatalf("at %d: read %d bytes (%v), want %d equal", at, n, err, want)
		}
	}
	if end, _ := r.Seek(0, io.SeekEnd); end != int64(len(data)) {
		t.Fatalf("size %d, want %d", end, len(data))
	}
	if _, err := b.OpenRecording(ctx, "none"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a session without a recording: %v, want os.ErrNotExist", err)
	}

	// SQLite: the file only.
	lite := New(Config{Store: openStore(t, filepath.Join(t.TempDir(), "p.db")), RecordingsDir: t.TempDir(), Log: zerolog.Nop()})
	defer lite.Close()
	if _, err := lite.OpenRecording(ctx, "s1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SQLite relay: %v, want os.ErrNotExist", err)
	}
}
