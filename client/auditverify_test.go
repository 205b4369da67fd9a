package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

// relayWithLog starts a fake relay holding n correctly chained records.
func relayWithLog(t *testing.T, n int) (*clienttest.Relay, *client.Client) {
	t.Helper()
	relay := clienttest.New(t)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	for i := range n {
		relay.AppendAudit(t0.Add(time.Duration(i)*time.Second), "token:tok-admin (admin)", "token.create",
			fmt.Sprintf("et-%d", i), map[string]string{"uses": "1", "tags": "site=paris"})
	}
	c, err := client.New(relay.Config(clienttest.ViewerToken))
	if err != nil {
		t.Fatal(err)
	}
	return relay, c
}

func TestVerifyAuditIntact(t *testing.T) {
	for _, tt := range []struct {
		name      string
		records   int
		pageLimit int
		pages     int // GET /v1/audit requests expected
	}{
		{"empty", 0, 0, 1},
		{"one page", 10, 0, 2},
		{"several pages", 2500, 0, 4},
		{"relay serves short pages", 700, 300, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			relay, c := relayWithLog(t, tt.records)
			relay.PageLimit = tt.pageLimit
			var seen int64
			res, err := c.VerifyAudit(ctx(t), func(r audit.Record) error {
				seen++
				if r.Seq != seen {
					return fmt.Errorf("callback got seq %d, want %d", r.Seq, seen)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("VerifyAudit: %v", err)
			}
			if res.Records != int64(tt.records) || seen != int64(tt.records) || res.Head.Seq != int64(tt.records) {
				t.Errorf("result %+v, callback saw %d, want %d records", res, seen, tt.records)
			}
			pages := 0
			for _, r := range relay.Requests {
				if strings.HasPrefix(r, "GET /v1/audit?") {
					pages++
					if tt.pageLimit == 0 && !strings.Contains(r, "limit=1000") {
						t.Errorf("request %q does not ask for 1000 records", r)
					}
				}
			}
			if pages != tt.pages {
				t.Errorf("%d page requests, want %d: %q", pages, tt.pages, relay.Requests)
			}
		})
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(r *clienttest.Relay)
		seq    int64
		reason string
	}{
		{"edited detail", func(r *clienttest.Relay) {
			r.Records[1233].Detail = map[string]string{"uses": "0", "tags": "site=paris"}
		}, 1234, "hash does not match the record's content"},
		{"edited and rehashed", func(r *clienttest.Relay) {
			r.Records[41].Actor = "system"
			r.Records[41].Hash = r.Records[41].ComputeHash()
		}, 43, "prev_hash does not match"},
		{"removed record", func(r *clienttest.Relay) {
			r.Records = append(r.Records[:699], r.Records[700:]...)
		}, 700, "missing (next record present is 701)"},
		{"removed tail", func(r *clienttest.Relay) {
			r.Head = &apiv1.AuditHead{Seq: 1500, Hash: r.Records[1499].Hash}
			r.Records = r.Records[:1490]
		}, 1491, "missing (chain ends at 1490, head is 1500)"},
		{"head hash differs", func(r *clienttest.Relay) {
			r.Head = &apiv1.AuditHead{Seq: 1500, Hash: strings.Repeat("0", 64)}
		}, 1500, "hash does not match the stored head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, c := relayWithLog(t, 1500)
			relay.Lock()
			tt.tamper(relay)
			relay.Unlock()
			_, err := c.VerifyAudit(ctx(t), nil)
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyAudit = %v, want a ChainError", err)
			}
			if ce.Seq != tt.seq || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("ChainError = %d %q, want %d %q", ce.Seq, ce.Reason, tt.seq, tt.reason)
			}
		})
	}
}

// Records appended while the client pages through the log are verified up
// to the head it reads, not reported as missing.
func TestVerifyAuditConcurrentAppend(t *testing.T) {
	relay, c := relayWithLog(t, 10)
	appended := false
	relay.Hook = func(req *http.Request) {
		if req.URL.Path == "/v1/audit/head" && !appended {
			appended = true
			for range 5 {
				relay.AppendAudit(time.Now(), "token:tok-admin (admin)", "login", "tok-admin", nil)
			}
		}
	}
	res, err := c.VerifyAudit(ctx(t), nil)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if res.Records != 15 || res.Head.Seq != 15 {
		t.Errorf("result %+v, want 15 records", res)
	}
}

func TestVerifyAuditCallbackStops(t *testing.T) {
	_, c := relayWithLog(t, 20)
	stop := &audit.ChainError{Seq: 7, Reason: "anchor mismatch"}
	_, err := c.VerifyAudit(ctx(t), func(r audit.Record) error {
		if r.Seq == 7 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("VerifyAudit = %v, want the callback's error", err)
	}
}
