package api

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/store"
)

func TestAuditFilters(t *testing.T) {
	a, h, tok := testAPI(t) // minting the three tokens wrote records 1-3 (api-token.create)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := a.Store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour), CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	pc1 := "0190a000-0000-7000-8000-0000000000a1"
	pc2 := "0190a000-0000-7000-8000-0000000000b2"
	twin := "0190b000-0000-7000-8000-0000000000c3"
	for id, host := range map[string]string{pc1: "PC-001", pc2: "pc-002", twin: "pc-002"} {
		if _, _, err := a.Store.EnrollAgent(ctx, "h", store.Agent{ID: id, Hostname: host}, now); err != nil {
			t.Fatal(err)
		}
	}
	gone := "0190c000-0000-7000-8000-0000000000d4" // no longer enrolled
	for _, r := range []audit.Record{
		{Actor: "alice (admin)", Action: "agent.revoke", Target: pc1},                                                    // 4
		{Actor: "bob (technician)", Action: "session.request", Target: "s1", Detail: map[string]string{"agent_id": pc2}}, // 5
		{Actor: "bob (technician)", Action: "agent.revoke", Target: gone},                                                // 6
	} {
		if _, err := a.Store.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) (int, []int64, string) {
		t.Helper()
		rec := do(h, "GET", "/v1/audit?"+query, tok[apiv1.RoleViewer], "")
		if rec.Code != 200 {
			return rec.Code, nil, rec.Body.String()
		}
		var recs []audit.Record
		if err := json.Unmarshal(rec.Body.Bytes(), &recs); err != nil {
			t.Fatal(err)
		}
		seqs := []int64{}
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
		}
		return rec.Code, seqs, ""
	}
	ok := []struct {
		query string
		want  []int64
	}{
		{"", []int64{1, 2, 3, 4, 5, 6}},
		{"actor=BOB", []int64{5, 6}},
		{"action=agent.revoke", []int64{4, 6}},
		{"action=api-token.*&order=desc&limit=2", []int64{3, 2}},
		{"agent=pc-001", []int64{4}},      // hostname, any case
		{"agent=" + pc2[:35], []int64{5}}, // unique ID prefix
		{"agent=" + gone, []int64{6}},     // an agent ID no longer enrolled
		{"since=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), []int64{1, 2, 3, 4, 5, 6}},
		{"until=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), []int64{}},
		{"after=4&before=6", []int64{5}},
	}
	for _, tc := range ok {
		code, got, body := list(tc.query)
		if code != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("?%s: %d %v %s; want %v", tc.query, code, got, body, tc.want)
		}
	}
	bad := []struct{ query, says string }{
		{"since=yesterday", "since:"},
		{"until=2026-05-01", "until:"},
		{"since=2026-05-02T00:00:00Z&until=2026-05-01T00:00:00Z", "until:"},
		{"action=" + url.QueryEscape("DROP TABLE"), "action:"},
		{"actor=" + strings.Repeat("x", 300), "actor:"},
		{"agent=nosuchhost", "agent: no agent"},
		{"agent=pc-002", "names 2 agents"},
		{"order=sideways", "order:"},
		{"limit=0", "limit:"},
		{"before=-1", "before:"},
	}
	for _, tc := range bad {
		code, _, body := list(tc.query)
		if code != 400 || !strings.Contains(body, tc.says) {
			t.Errorf("?%s: %d %s; want 400 saying %q", tc.query, code, body, tc.says)
		}
	}

	// The export: every match as a download, in either format.
	rec := do(h, "GET", "/v1/audit/export?format=csv&actor=bob", tok[apiv1.RoleViewer], "")
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if rec.Code != 200 || len(lines) != 3 || lines[0] != strings.Join(audit.CSVHeader, ",") || !strings.HasPrefix(lines[1], "5,") ||
		!strings.Contains(rec.Header().Get("Content-Disposition"), `attachment; filename="patchbay-audit-`) {
		t.Errorf("csv export: %d %q %v", rec.Code, lines, rec.Header())
	}
	rec = do(h, "GET", "/v1/audit/export?format=jsonl", tok[apiv1.RoleViewer], "")
	if rec.Code != 200 || strings.Count(rec.Body.String(), "\n") != 6 || rec.Header().Get("Content-Type") != "application/jsonl" {
		t.Errorf("jsonl export: %d %s", rec.Code, rec.Body.String())
	}
	for query, says := range map[string]string{"format=xml": "format:", "format=csv&order=desc": "order:", "format=csv&since=x": "since:", "": "format:"} {
		rec := do(h, "GET", "/v1/audit/export?"+query, tok[apiv1.RoleViewer], "")
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), says) {
			t.Errorf("export ?%s: %d %s", query, rec.Code, rec.Body.String())
		}
	}
	if rec := do(h, "GET", "/v1/audit/export?format=csv", "", ""); rec.Code != 401 {
		t.Errorf("export without a token: %d", rec.Code)
	}
}
