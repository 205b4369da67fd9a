package server

import (
	"context"
	"net/http"
	"testing"
)

// Failed sign-ins reach the audit log as one auth.failures record per
// source with the count, however many there were (written at the latest
// when the relay closes).
func TestFailedSignInsAreAudited(t *testing.T) {
	dir := t.TempDir()
	_, client, base, stop := startTestRelay(t, dir)
	for range 3 {
		req, _ := http.NewRequest("GET", base+"/v1/agents", nil)
		req.Header.Set("Authorization", "Bearer pba_guess")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("bad token: %d", resp.StatusCode)
		}
	}
	stop()
	st, err := OpenStore(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, r := range recs {
		if r.Action == "auth.failures" {
			found = append(found, r.Target+" failures="+r.Detail["failures"]+" users="+r.Detail["users"])
		}
	}
	if len(found) != 1 || found[0] != "127.0.0.1 failures=3 users=(token)" {
		t.Fatalf("auth.failures records: %q; want one for 127.0.0.1 with 3 failures", found)
	}
}
