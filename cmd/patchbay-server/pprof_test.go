package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestPprofOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060", "nonsense"} {
		if _, err := servePprof(context.Background(), addr, zerolog.Nop()); err == nil {
			t.Errorf("servePprof(%q) served", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs strings.Builder
	wait, err := servePprof(ctx, "127.0.0.1:0", zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	url := logs.String()[strings.Index(logs.String(), "http://"):]
	url = url[:strings.Index(url, `"`)]
	resp, err := http.Get(url + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", resp.StatusCode, body)
	}
	cancel()
	wait()
	if _, err := http.Get(url); err == nil {
		t.Fatal("pprof still served after ctx ended")
	}
}
