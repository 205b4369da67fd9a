package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

// auditSeqs parses audit list -o json into sequence numbers.
func auditSeqs(t *testing.T, r result) []int64 {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("audit list: %+v", r)
	}
	var recs []audit.Record
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		t.Fatalf("audit list -o json: %v\n%s", err, r.stdout)
	}
	seqs := []int64{}
	for _, rec := range recs {
		seqs = append(seqs, rec.Seq)
	}
	return seqs
}

func TestAuditFilterAndExportCommands(t *testing.T) {
	st := realRelay(t, apiv1.RoleViewer) // record 1: its api-token.create
	enrollFixture(t, st, map[string]string{agentA: "web-01", agentB: "kiosk"})
	ctx := context.Background()
	add := func(at time.Time, actor, action, target string, detail map[string]string) {
		t.Helper()
		if _, err := st.AppendAudit(ctx, audit.Record{Time: at, Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
			t.Fatal(err)
		}
	}
	// 2500 records over 2500 minutes before fixedNow: every 10th is bob's
	// session request on web-01, the others alice's logins.
	const n = 2500
	start := fixedNow.Add(-n * time.Minute)
	for i := range n {
		if i%10 == 0 {
			add(start.Add(time.Duration(i)*time.Minute), "bob (technician)", "session.request", fmt.Sprintf("s-%d", i), map[string]string{"agent_id": agentA})
		} else {
			add(start.Add(time.Duration(i)*time.Minute), "=alice (admin)", "login", "tok", nil)
		}
	}
	// The first of bob's records is seq 2; the newest of them is seq 2+2490.
	got := auditSeqs(t, patchbay(t, "", "audit", "list", "--agent", "WEB-01", "--limit", "3", "-o", "json"))
	if fmt.Sprint(got) != "[2472 2482 2492]" {
		t.Errorf("newest 3 about web-01: %v", got)
	}
	got = auditSeqs(t, patchbay(t, "", "audit", "list", "--actor", "BOB", "--action", "session.*", "--after", "0", "--limit", "2", "-o", "json"))
	if fmt.Sprint(got) != "[2 12]" {
		t.Errorf("first 2 of bob's: %v", got)
	}
	// --since as a duration before now (the CLI's clock is fixedNow): the
	// last 30 minutes hold records 2472..2501, of which 3 are bob's.
	got = auditSeqs(t, patchbay(t, "", "audit", "list", "--since", "30m", "--agent", agentA[:12], "-o", "json"))
	if fmt.Sprint(got) != "[2472 2482 2492]" {
		t.Errorf("bob's in the last 30m: %v", got)
	}
	until := start.Add(25 * time.Minute).Format(time.RFC3339)
	got = auditSeqs(t, patchbay(t, "", "audit", "list", "--until", until, "--action", "session.request", "-o", "json"))
	if fmt.Sprint(got) != "[2 12 22]" {
		t.Errorf("until %s: %v", until, got)
	}
	r := patchbay(t, "", "audit", "list", "--agent", "kiosk")
	if r.code != 0 || strings.TrimSpace(r.stderr) != "No audit records." {
		t.Errorf("nothing about kiosk: %+v", r)
	}

	// Bad values: refused by the CLI (usage, exit 2) or by the relay (400).
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--since", "yesterday"}, 2, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"--since", "1h", "--until", "2h"}, 2, "--until 2h is not after --since 1h"},
		{[]string{"--action", "Session Approved"}, 1, "action:"},
		{[]string{"--agent", "web-99"}, 1, `agent: no agent with ID, ID prefix or hostname "web-99"`},
	} {
		r := patchbay(t, "", append([]string{"audit", "list"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("audit list %v: %+v; want exit %d saying %q", tc.args, r, tc.code, tc.says)
		}
	}

	// Export: every record, in pages, as JSON lines that verify as a chain.
	r = patchbay(t, "", "audit", "export", "-o", "jsonl")
	if r.code != 0 || !strings.Contains(r.stderr, "Exported 2501 audit records (seq 1 to 2501)") {
		t.Fatalf("export jsonl: %d %s", r.code, r.stderr)
	}
	var v audit.Verifier
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", v.Count()+1, err)
		}
		if err := v.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	seq, hash, _ := st.AuditHead(ctx)
	if err := v.Finish(seq, hash); err != nil || v.Count() != 2501 {
		t.Errorf("exported chain: %d records, %v", v.Count(), err)
	}

	// Filtered CSV: a header, bob's 250 rows, formulas defused.
	r = patchbay(t, "", "audit", "export", "--actor", "bob", "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if r.code != 0 || err != nil || len(rows) != 251 {
		t.Fatalf("export csv: %d rows, %v, %+v", len(rows), err, r.stderr)
	}
	if strings.Join(rows[0], ",") != "seq,time,actor,action,target,detail,prev_hash,hash" ||
		rows[1][0] != "2" || rows[1][1] != start.Format(time.RFC3339) || rows[1][3] != "session.request" ||
		rows[1][5] != `{"agent_id":"`+agentA+`"}` || len(rows[1][7]) != 64 {
		t.Errorf("csv rows: %q\n%q", rows[0], rows[1])
	}
	r = patchbay(t, "", "audit", "export", "--actor", "alice", "--after", "2495", "-o", "csv")
	rows, _ = csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if len(rows) != 7 || rows[1][2] != "'=alice (admin)" {
		t.Errorf("csv formula cell: %q", rows)
	}
	r = patchbay(t, "", "audit", "export", "-o", "xml")
	if r.code != 2 || !strings.Contains(r.stderr, `-o "xml": want csv or jsonl`) {
		t.Errorf("export -o xml: %+v", r)
	}
}
