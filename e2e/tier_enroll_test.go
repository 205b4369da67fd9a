package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTierEnrollAnyRelay: with several --server, patchbay-agent enroll goes
// through the first relay that answers. The first is down (a closed port),
// the second enrolls the agent, which then connects (failing over past the
// dead one) and keeps both addresses in agent.json.
func TestTierEnrollAnyRelay(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	b := StartRelay(t)
	admin := b.Login(b.AdminToken())
	dead := "https://" + freePort(t)
	dir := filepath.Join(t.TempDir(), "agent")
	run(t, nil, bin("patchbay-agent"), "enroll", "--server", dead, "--server", b.URL, "--token", admin.Token(),
		"--ca-fingerprint", b.FP, "--data", dir)
	raw, err := os.ReadFile(filepath.Join(dir, "agent.json"))
	if err != nil {
		t.Fatalf("read enrolled identity: %v", err)
	}
	var cfg struct {
		AgentID string   `json:"agent_id"`
		Servers []string `json:"servers"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.AgentID == "" {
		t.Fatalf("agent.json: %v %s", err, raw)
	}
	if !slices.Equal(cfg.Servers, []string{dead, b.URL}) {
		t.Fatalf("agent.json servers %v, want %v", cfg.Servers, []string{dead, b.URL})
	}
	ag := &Agent{Dir: dir, ID: cfg.AgentID, t: t}
	ag.Start()
	waitFor(t, 30*time.Second, "the agent enrolled through the second relay online there", func() bool { return admin.Online(ag.ID) })

	// Every relay down: the error names them and the fix.
	_, errOut, err := try(nil, bin("patchbay-agent"), "enroll", "--server", dead, "--server", "https://"+freePort(t), "--token", admin.Token(),
		"--ca-fingerprint", b.FP, "--data", filepath.Join(t.TempDir(), "agent"))
	if err == nil || !strings.Contains(errOut, "no relay of --server") || !strings.Contains(errOut, dead) {
		t.Fatalf("enroll with every relay down: %v\n%s", err, errOut)
	}
}
