package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestRecordingChunks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if n, err := s.RecordingStoredSize(ctx, "s1"); err != nil || n != 0 {
		t.Fatalf("size of no recording: %d, %v", n, err)
	}
	parts := [][]byte{[]byte("{\"version\": 2}\n"), bytes.Repeat([]byte{0, 0xff, 'x'}, 1000), []byte("[1.5, \"o\", \"bye\"]\n")}
	var pos int64
	for _, p := range parts {
		if err := s.AppendRecordingChunk(ctx, "s1", pos, p); err != nil {
			t.Fatal(err)
		}
		pos += int64(len(p))
	}
	if err := s.AppendRecordingChunk(ctx, "s2", 0, []byte("other")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecordingStoredSize(ctx, "s1"); err != nil || n != pos {
		t.Fatalf("size %d, %v; want %d", n, err, pos)
	}
	var got []byte
	for at := int64(0); at < pos; {
		start, data, err := s.RecordingChunkAt(ctx, "s1", at)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data[at-start:]...)
		at = start + int64(len(data))
	}
	if want := bytes.Join(parts, nil); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d equal", len(got), len(want))
	}
	if start, data, err := s.RecordingChunkAt(ctx, "s1", 20); err != nil || start != int64(len(parts[0])) || len(data) != len(parts[1]) {
		t.Fatalf("chunk at 20: start %d, %d bytes, %v", start, len(data), err)
	}
	if _, _, err := s.RecordingChunkAt(ctx, "s1", pos); !errors.Is(err, ErrNotFound) {
		t.Fatalf("chunk past the end: %v", err)
	}
}
