package e2e

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// softwareFileEnv is the agent's test and diagnostic hook
// (agent/inventory.SoftwareFileEnv): the agent reads its package list from
// this file, in dpkg-query -W format, instead of from dpkg.
const softwareFileEnv = "PATCHBAY_INVENTORY_SOFTWARE_FILE"

// startWithSoftware runs an enrolled agent whose software list is the
// dpkg-query -W style file it returns (rewrite it, then inventory refresh).
func startWithSoftware(t *testing.T, a *Agent, pkgs string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "packages.txt")
	if err := os.WriteFile(f, []byte(pkgs), 0o644); err != nil {
		t.Fatal(err)
	}
	a.proc = startProc(t, "agent "+a.ID, []string{softwareFileEnv + "=" + f}, bin("patchbay-agent"), "run", "--data", a.Dir, "--log-level", "debug", "--log-format", "json")
	return f
}

func sortedAgentIDs(agents []apiv1.Agent) []string {
	var out []string
	for _, a := range agents {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

func sortedIDs(v ...string) []string {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

func (c *CLI) holders(t *testing.T, args ...string) []apiv1.SoftwareHolding {
	t.Helper()
	var hs []apiv1.SoftwareHolding
	if err := json.Unmarshal([]byte(c.Run(append([]string{"inventory", "software"}, append(args, "-o", "json")...)...)), &hs); err != nil {
		t.Fatal(err)
	}
	return hs
}

func (c *CLI) inventory(t *testing.T, agent string) apiv1.Inventory {
	t.Helper()
	var inv apiv1.Inventory
	if err := json.Unmarshal([]byte(c.Run("inventory", "show", agent, "-o", "json")), &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}

// Three real agents report simulated software lists through the real link
// and relay: software= selectors in agents list select exactly the agents
// with the package (one package matching name and version together), a job
// targeted by such a selector runs only on them, an upgrade reported after
// inventory refresh lands in the history, and a refresh with an unchanged
// list writes nothing.
func TestInventorySelectorsAndJobs(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	signer := newSigner(t, "secops@example.com")
	tok := cli.Token("--uses", "3")
	enroll := func() *Agent { return r.Enroll(tok, "--trust", signer.allowedSigners(t)) }
	a, b, c := enroll(), enroll(), enroll()
	fileA := startWithSoftware(t, a, "openssl\t3.0.11-1~deb12u2\nfirefox-esr\t115.12.0esr-1\nzlib1g\t1:1.2.13\n")
	startWithSoftware(t, b, "openssl\t3.0.14-1\ncurl\t7.88.1-10\nzlib1g\t1:1.2.13\n")
	startWithSoftware(t, c, "curl\t7.88.1-10\n")

	waitFor(t, 30*time.Second, "three software inventories stored", func() bool {
		return len(cli.holders(t, "zlib1g")) == 2 && len(cli.holders(t, "curl")) == 2
	})

	cases := map[string][]string{
		"software=openssl":                          sortedIDs(a.ID, b.ID),
		"software=OpenSSL,software.version<3.0.14":  {a.ID},
		"software=openssl,software.version>=3.0.14": {b.ID},
		"software=curl":                             sortedIDs(b.ID, c.ID),
		"software!=openssl":                         {c.ID},
		"software in (firefox-esr,curl)":            sortedIDs(a.ID, b.ID, c.ID),
		"software=nonexistent":                      nil,
		// one package must match both: a has openssl < 3.0.14 but no curl
		"software=curl,software.version<7":       nil,
		"software=zlib1g,software.version<1:1.3": sortedIDs(a.ID, b.ID),
		"software=zlib1g,software.version<1.3":   nil, // the epoch counts first
		"memory>1MiB,disk.free<=100%":            sortedIDs(a.ID, b.ID, c.ID),
		"memory<1KiB":                            nil,
		"os=linux,software=openssl":              sortedIDs(a.ID, b.ID),
	}
	for sel, want := range cases {
		if got := sortedAgentIDs(cli.Agents(sel)); !slices.Equal(got, want) {
			t.Errorf("agents list --target %q = %v, want %v", sel, got, want)
		}
	}

	// A job by an inventory selector runs only on the agents it selects.
	cli.publish(t, signer, bin("plugins/testplugin"))
	j, err := cli.runJob(t, "testplugin", "--target", "software=openssl,software.version<3.0.14", "--param", "mode=echo", "--param", "text=patched")
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	if res := onlyResult(t, j); res.AgentID != a.ID || res.State != "succeeded" {
		t.Fatalf("job ran on %s (%s), want only %s", res.AgentID, res.State, a.ID)
	}

	// who has which version: table, JSON and CSV.
	hs := cli.holders(t, "openssl", "--version-lt", "3.0.14")
	if len(hs) != 1 || hs[0].AgentID != a.ID || hs[0].Version != "3.0.11-1~deb12u2" || hs[0].Source != "file" {
		t.Fatalf("holders of openssl < 3.0.14: %+v", hs)
	}
	rows, err := csv.NewReader(strings.NewReader(cli.Run("inventory", "software", "openssl", "-o", "csv"))).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "agent_id" || rows[0][4] != "version" {
		t.Fatalf("csv: %v %q", err, rows)
	}

	// Hardware and last reboot come from this machine.
	inv := cli.inventory(t, a.ID)
	if inv.Hardware.MemoryBytes <= 0 || inv.Hardware.CPUCount < 1 || inv.BootTime == nil || inv.SoftwareCount != 3 || len(inv.Hardware.Disks) == 0 {
		t.Fatalf("inventory show: %+v", inv)
	}
	if out := cli.Run("inventory", "show", a.ID); !strings.Contains(out, "Last reboot:") || !strings.Contains(out, "Packages:") {
		t.Fatalf("inventory show table:\n%s", out)
	}

	// An unchanged list on refresh: the relay stores nothing new.
	stored := r.Log().Count("software inventory stored")
	before := cli.inventory(t, b.ID)
	cli.Run("inventory", "refresh", b.ID)
	waitFor(t, 20*time.Second, "the refreshed, unchanged list to reach the relay", func() bool {
		return r.Log().Count("software inventory stored") > stored
	})
	if after := cli.inventory(t, b.ID); after.SoftwareAt == nil || !after.SoftwareAt.Equal(*before.SoftwareAt) {
		t.Errorf("unchanged list moved software_at: %v -> %v", before.SoftwareAt, after.SoftwareAt)
	}
	var histB []apiv1.SoftwareChange
	json.Unmarshal([]byte(cli.Run("inventory", "history", b.ID, "-o", "json")), &histB)
	if len(histB) != 0 {
		t.Errorf("history of b has %d entries, want none (its first list is the baseline): %+v", len(histB), histB)
	}

	// An upgrade on a, reported on demand: history and selectors follow.
	if err := os.WriteFile(fileA, []byte("openssl\t3.0.14-1\nzlib1g\t1:1.2.13\ncurl\t8.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli.Run("inventory", "refresh", a.ID)
	var hist []apiv1.SoftwareChange
	waitFor(t, 20*time.Second, "the upgrade in a's history", func() bool {
		json.Unmarshal([]byte(cli.Run("inventory", "history", a.ID, "-o", "json")), &hist)
		return len(hist) == 3
	})
	var got []string
	for _, h := range hist[:3] {
		got = append(got, h.Change+" "+h.Name+" "+h.OldVersion+" "+h.NewVersion)
	}
	slices.Sort(got)
	want := []string{"installed curl  8.0", "removed firefox-esr 115.12.0esr-1 ", "upgraded openssl 3.0.11-1~deb12u2 3.0.14-1"}
	if !slices.Equal(got, want) {
		t.Errorf("history after the upgrade: %q, want %q", got, want)
	}
	if got := sortedAgentIDs(cli.Agents("software=openssl,software.version<3.0.14")); len(got) != 0 {
		t.Errorf("after the upgrade, openssl < 3.0.14 still on %v", got)
	}
	// An agent that is not connected cannot be refreshed.
	c.proc.stop(t)
	waitFor(t, 10*time.Second, "agent c offline", func() bool { return !cli.Online(c.ID) })
	if _, errOut, err := cli.Try("inventory", "refresh", c.ID); err == nil || !strings.Contains(errOut, "not connected") {
		t.Errorf("refresh of an offline agent: %v %s", err, errOut)
	}
}
