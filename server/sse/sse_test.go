package sse_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/sse"
)

func TestStreamIsWrittenAndFlushed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := sse.Start(w, 5*time.Second)
		if !ok {
			t.Error("Start failed")
			return
		}
		sw.Event("progress", []byte(`{"n":1}`))
		sw.Keepalive()
		sw.Event("logout", strconv.AppendQuote(nil, "session ended"))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := "retry: 2000\n: connected\n\n" +
		"event: progress\ndata: {\"n\":1}\n\n" +
		": keepalive\n\n" +
		"event: logout\ndata: \"session ended\"\n\n"
	if string(body) != want {
		t.Errorf("stream:\n%q\nwant\n%q", body, want)
	}
}

// A flush reaches the client before the handler returns: a browser sees
// each event as it is written.
func TestEventArrivesBeforeTheHandlerEnds(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := sse.Start(w, 5*time.Second)
		if !ok {
			return
		}
		sw.Event("agents", []byte(`[]`))
		<-release
	}))
	defer srv.Close()
	defer close(release)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := "retry: 2000\n: connected\n\nevent: agents\ndata: []\n\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != want {
		t.Fatalf("read %q (%v), want %q", got, err, want)
	}
}
