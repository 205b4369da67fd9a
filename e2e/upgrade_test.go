package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/plugins/signature"
)

// Versions of the agent the self-update tests build (-X main.version).
const (
	upOld       = "v0.9.0-e2e"
	upNew       = "v1.0.0-e2e"
	upNoConnect = "v1.1.0-e2e-noconnect" // built with -X main.testRelay: cannot reach any relay
	upCrash     = "v1.2.0-e2e-crash"     // built with -X main.testCrashAfterStart: exits 3 at every start
)

// upgradeBuilds are the agent binaries at each version, built once.
var upgradeBuilds struct {
	once sync.Once
	bins map[string]string
	err  error
}

func agentBuild(t *testing.T, version string) string {
	t.Helper()
	upgradeBuilds.once.Do(func() {
		dir := filepath.Join(binDir, "upgrade")
		upgradeBuilds.bins = map[string]string{}
		for _, v := range []string{upOld, upNew, upNoConnect, upCrash} {
			ld := "-X main.version=" + v
			switch v {
			case upNoConnect:
				ld += " -X main.testRelay=https://127.0.0.1:1" // nothing listens on port 1
			case upCrash:
				ld += " -X main.testCrashAfterStart=1"
			}
			out := filepath.Join(dir, v, "patchbay-agent")
			if b, err := exec.Command("go", "build", "-ldflags", ld, "-o", out, "../cmd/patchbay-agent").CombinedOutput(); err != nil {
				upgradeBuilds.err = fmt.Errorf("build agent %s: %v\n%s", v, err, b)
				return
			}
			upgradeBuilds.bins[v] = out
		}
	})
	if upgradeBuilds.err != nil {
		t.Fatal(upgradeBuilds.err)
	}
	return upgradeBuilds.bins[version]
}

// releaseDir is a relay's --releases directory made by a test.
type releaseDir struct {
	Root string
}

// add makes release version holding bin as this platform's agent, with
// SHA256SUMS signed by s for namespace patchbay-release. tamper, when set,
// changes the files after signing.
func (d releaseDir) add(t *testing.T, version, bin string, s signer, tamper func(dir, binName string)) {
	t.Helper()
	dir := filepath.Join(d.Root, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := release.AgentName(version, runtime.GOOS, runtime.GOARCH)
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	m := release.Manifest{Files: []release.File{{Name: name, SHA256: hex.EncodeToString(sum[:])}}}
	sums := m.Marshal()
	key, err := signature.LoadSigner(s.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signature.SignNamespace(key, bytes.NewReader(sums), signature.ReleaseNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, release.SumsName), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, release.SigName), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(dir, name)
	}
}

// upgradeSigners writes an allowed_signers file trusting s for plugins and
// releases.
func upgradeSigners(t *testing.T, s signer) string {
	t.Helper()
	pub, err := os.ReadFile(s.Pub)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "allowed_signers")
	fields := strings.Fields(string(pub))
	line := s.Principal + ` namespaces="patchbay-plugin,patchbay-release" ` + fields[0] + " " + fields[1] + "\n"
	if err := os.WriteFile(f, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// upAgent is an enrolled agent running from its own copy of a build, which
// its self-updates replace.
type upAgent struct {
	*Agent
	Exe string
	log *watchLog
}

// watchLog is a process's output that tells when a line appears.
type watchLog struct {
	logBuffer
	mu      sync.Mutex
	watches []logWatch
}

type logWatch struct {
	s  string
	ch chan struct{}
}

func (w *watchLog) Write(p []byte) (int, error) {
	n, err := w.logBuffer.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.watches) == 0 {
		return n, err
	}
	all := w.logBuffer.String()
	kept := w.watches[:0]
	for _, x := range w.watches {
		if strings.Contains(all, x.s) {
			close(x.ch)
		} else {
			kept = append(kept, x)
		}
	}
	w.watches = kept
	return n, err
}

// when returns a channel closed once the output contains s.
func (w *watchLog) when(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(w.logBuffer.String(), s) {
		close(ch)
		return ch
	}
	w.watches = append(w.watches, logWatch{s, ch})
	return ch
}

// startUpAgent enrolls an agent trusting key for releases: with the
// allowed_signers file trustFile, or when that is "" by patchbay-agent
// trust add --release.
func startUpAgent(t *testing.T, r *Relay, token, trustFile string, key signer, build string) *upAgent {
	t.Helper()
	var a *Agent
	if trustFile != "" {
		a = r.Enroll(token, "--trust", trustFile)
	} else {
		a = r.Enroll(token)
		out := run(t, nil, bin("patchbay-agent"), "trust", "add", "--data", a.Dir, "--principal", key.Principal, "--release", key.Pub)
		if !strings.Contains(out, "patchbay-plugin,patchbay-release") {
			t.Fatalf("trust add --release: %s", out)
		}
	}
	exe := filepath.Join(t.TempDir(), "bin", "patchbay-agent")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(build)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &upAgent{Agent: a, Exe: exe, log: &watchLog{}}
	p := &proc{name: "agent " + a.ID, log: &u.log.logBuffer, done: make(chan struct{})}
	p.cmd = exec.Command(exe, "run", "--data", a.Dir, "--log-level", "debug", "--log-format", "json")
	p.cmd.Env = append(os.Environ(), "PATCHBAY_AGENT_RESTART=exec")
	p.cmd.Stdout, p.cmd.Stderr = u.log, u.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- agent %s output (last 6 KB) ---\n%s", a.ID, tail(u.log.String(), 6144))
		}
	})
	a.proc = p
	return u
}

// sameFile fails unless path holds exactly the bytes of want.
func sameFile(t *testing.T, path, want, what string) {
	t.Helper()
	a, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s: %s is not %s", what, path, want)
	}
}

// noStrayFiles fails if the executable's directory holds more than want.
func noStrayFiles(t *testing.T, exe string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(exe))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files next to the agent's executable: %v, want %v", got, want)
	}
}

// upgrade runs patchbay agents upgrade ... --wait -o json.
func (c *CLI) upgrade(t *testing.T, args ...string) (apiv1.Job, error) {
	t.Helper()
	out, errOut, err := c.Try(append(append([]string{"agents", "upgrade"}, args...), "--wait", "-o", "json")...)
	var j apiv1.Job
	if jerr := json.Unmarshal([]byte(out), &j); jerr != nil {
		t.Fatalf("patchbay agents upgrade %v: %v (exit %v)\nstdout: %s\nstderr: %s", args, jerr, err, out, errOut)
	}
	return j, err
}

type upDetails struct {
	Before     string `json:"version_before"`
	After      string `json:"version_after"`
	RolledBack bool   `json:"rolled_back"`
}

func runDetails(t *testing.T, r apiv1.RunResult) upDetails {
	t.Helper()
	var d upDetails
	if r.Details == nil || json.Unmarshal(r.Details.Data, &d) != nil {
		t.Fatalf("run %s on %s: details %+v are not the upgrade's JSON", r.RunID, r.AgentID, r.Details)
	}
	return d
}

type upgradeFleet struct {
	relay  *Relay
	cli    *CLI
	rel    releaseDir
	key    signer
	trust  string
	agents []*upAgent
}

func newUpgradeFleet(t *testing.T, n int) *upgradeFleet {
	t.Helper()
	old := agentBuild(t, upOld)
	rel := releaseDir{Root: filepath.Join(t.TempDir(), "releases")}
	if err := os.MkdirAll(rel.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	key := newSigner(t, "releases@example.com")
	r := StartRelayArgs(t, "--releases", rel.Root)
	cli := r.Login(r.AdminToken())
	f := &upgradeFleet{relay: r, cli: cli, rel: rel, key: key, trust: upgradeSigners(t, key)}
	for i := 0; i < n; i++ {
		trustFile := f.trust
		if i == n-1 {
			trustFile = "" // the last one by patchbay-agent trust add --release
		}
		f.agents = append(f.agents, startUpAgent(t, r, cli.Token("--tags", "fleet=upgrade"), trustFile, key, old))
	}
	waitFor(t, 20*time.Second, "agents online on "+upOld, func() bool {
		ags := cli.Agents("fleet=upgrade")
		ok := 0
		for _, a := range ags {
			if a.Online && a.Version == upOld {
				ok++
			}
		}
		return ok == n
	})
	return f
}

// TestAgentSelfUpdate upgrades three agents with a canary of one through
// the CLI, then refuses releases that are not right without changing a
// byte, and watches an agent roll back a version that cannot connect.
func TestAgentSelfUpdate(t *testing.T) {
	f := newUpgradeFleet(t, 3)
	cli := f.cli
	newBin := agentBuild(t, upNew)
	f.rel.add(t, upNew, newBin, f.key, nil)

	j, err := f.cli.upgrade(t, "--version", upNew, "--target", "fleet=upgrade", "--canary", "1", "--max-failures", "0", "--rollback-after", "1m")
	if err != nil || j.State != "done" || j.Counts["succeeded"] != 3 || j.Canary != 1 {
		t.Fatalf("upgrade: exit %v, job %s, counts %v, canary %d, results %+v", err, j.State, j.Counts, j.Canary, j.Results)
	}
	var canaryEnd, othersStart time.Time
	for _, r := range j.Results {
		d := runDetails(t, r)
		if r.Version != upNew || d.Before != upOld || d.After != upNew || r.Summary != "upgraded from "+upOld+" to "+upNew {
			t.Fatalf("run on %s: version %q, details %+v, summary %q", r.AgentID, r.Version, d, r.Summary)
		}
		if r.Started == nil || r.Ended == nil {
			t.Fatalf("run on %s has no start or end", r.AgentID)
		}
		if canaryEnd.IsZero() || r.Ended.Before(canaryEnd) {
			canaryEnd = *r.Ended
		}
	}
	for _, r := range j.Results {
		if !r.Ended.Equal(canaryEnd) && (othersStart.IsZero() || r.Started.Before(othersStart)) {
			othersStart = *r.Started
		}
	}
	if othersStart.Before(canaryEnd) {
		t.Fatalf("the other agents started at %v, before the canary ended at %v", othersStart, canaryEnd)
	}
	for _, a := range cli.Agents("fleet=upgrade") {
		if !a.Online || a.Version != upNew {
			t.Fatalf("agent %s after the upgrade: online %v, version %q, want %s", a.ID, a.Online, a.Version, upNew)
		}
	}
	for _, a := range f.agents {
		sameFile(t, a.Exe, newBin, "upgraded executable")
		sameFile(t, a.Exe+".prev", agentBuild(t, upOld), "previous executable")
		noStrayFiles(t, a.Exe, "patchbay-agent", "patchbay-agent.prev")
		if n := a.log.Count("upgrade: fetching and verifying the release"); n != 1 {
			t.Fatalf("agent %s began the upgrade %d times", a.ID, n)
		}
	}
	// The table shows the new version too.
	if out := cli.Run("agents", "list", "--target", "id="+f.agents[0].ID); !strings.Contains(out, upNew) {
		t.Fatalf("agents list does not show %s:\n%s", upNew, out)
	}

	// Releases that must be refused, each with nothing changed on the agent.
	untrusted := newSigner(t, "mallory@example.com")
	f.rel.add(t, "v1.0.1-badsig", newBin, f.key, func(dir, _ string) { // signature over other bytes
		sums, _ := os.ReadFile(filepath.Join(dir, release.SumsName))
		os.WriteFile(filepath.Join(dir, release.SumsName), append(sums, []byte(strings.Repeat("0", 64)+"  extra\n")...), 0o644)
	})
	f.rel.add(t, "v1.0.2-untrusted", newBin, untrusted, nil)
	f.rel.add(t, "v1.0.3-badhash", newBin, f.key, func(dir, name string) {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		b[len(b)/2] ^= 0xff
		os.WriteFile(filepath.Join(dir, name), b, 0o755)
	})
	f.rel.add(t, "v1.0.4-wrongversion", newBin, f.key, nil) // the binary says v1.0.0-e2e
	target := f.agents[0]
	for _, c := range []struct{ version, want string }{
		{"v1.0.1-badsig", "bad signature"},
		{"v1.0.2-untrusted", "untrusted signer"},
		{"v1.0.3-badhash", "does not match the release manifest"},
		{"v1.0.4-wrongversion", `want "patchbay-agent v1.0.4-wrongversion`},
	} {
		j, err := cli.upgrade(t, "--version", c.version, "--target", "id="+target.ID)
		if err == nil || len(j.Results) != 1 || j.Results[0].State != "failed" ||
			!strings.Contains(j.Results[0].Error, "refused, nothing changed") || !strings.Contains(j.Results[0].Error, c.want) {
			t.Fatalf("release %s: exit %v, results %+v; want failed with %q", c.version, err, j.Results, c.want)
		}
		sameFile(t, target.Exe, newBin, "executable after refusing "+c.version)
		sameFile(t, target.Exe+".prev", agentBuild(t, upOld), "previous executable after refusing "+c.version)
		noStrayFiles(t, target.Exe, "patchbay-agent", "patchbay-agent.prev")
	}
	// An unsigned release is refused by the relay already.
	os.Remove(filepath.Join(f.rel.Root, "v1.0.4-wrongversion", release.SigName))
	if _, errOut, err := cli.Try("agents", "upgrade", "--version", "v1.0.4-wrongversion", "--target", "all"); err == nil || !strings.Contains(errOut, "has no SHA256SUMS.sig") {
		t.Fatalf("unsigned release: exit %v, stderr %s", err, errOut)
	}

	// A version the relay does not have is refused by the relay.
	if _, errOut, err := cli.Try("agents", "upgrade", "--version", "v9.9.9", "--target", "all"); err == nil || !strings.Contains(errOut, "no such release") {
		t.Fatalf("missing release: exit %v, stderr %s", err, errOut)
	}

	// A version that cannot reach the relay: a dry run checks it and
	// changes nothing; the real run is rolled back by the agent itself.
	f.rel.add(t, upNoConnect, agentBuild(t, upNoConnect), f.key, nil)
	j, err = cli.upgrade(t, "--version", upNoConnect, "--target", "id="+target.ID, "--dry-run")
	if err != nil || len(j.Results) != 1 || j.Results[0].State != "succeeded" || !strings.HasPrefix(j.Results[0].Summary, "would upgrade from "+upNew+" to "+upNoConnect) {
		t.Fatalf("dry run: exit %v, results %+v", err, j.Results)
	}
	sameFile(t, target.Exe, newBin, "executable after the dry run")
	noStrayFiles(t, target.Exe, "patchbay-agent", "patchbay-agent.prev")
	rolled := target.log.when("upgrade: previous binary restored")
	j, err = cli.upgrade(t, "--version", upNoConnect, "--target", "id="+target.ID, "--rollback-after", "3s")
	if err == nil || len(j.Results) != 1 {
		t.Fatalf("no-connect upgrade: exit %v, job %+v", err, j)
	}
	r := j.Results[0]
	want := "rolled back: " + upNoConnect + " did not reconnect within 3s"
	if d := runDetails(t, r); r.State != "failed" || r.Error != want || !d.RolledBack || d.Before != upNew || d.After != upNew {
		t.Fatalf("no-connect upgrade: state %s, error %q (want %q), details %+v", r.State, r.Error, want, d)
	}
	<-rolled
	sameFile(t, target.Exe, newBin, "executable after the rollback")
	sameFile(t, target.Exe+".failed", agentBuild(t, upNoConnect), "the rolled back binary")
	waitFor(t, 20*time.Second, "agent online on "+upNew+" after the rollback", func() bool {
		ags := cli.Agents("id=" + target.ID)
		return len(ags) == 1 && ags[0].Online && ags[0].Version == upNew
	})
}

// TestAgentSelfUpdateAcrossRelayRestart kills the relay the moment the
// agent has swapped its binary: the new version connects to the restarted
// relay, the run is reported once, and nothing runs twice.
func TestAgentSelfUpdateAcrossRelayRestart(t *testing.T) {
	f := newUpgradeFleet(t, 1)
	a := f.agents[0]
	newBin := agentBuild(t, upNew)
	f.rel.add(t, upNew, newBin, f.key, nil)

	swapped := a.log.when("upgrade: new binary installed")
	out := f.cli.Run("agents", "upgrade", "--version", upNew, "--target", "id="+a.ID, "--rollback-after", "2m")
	jobID := strings.TrimSpace(out)
	<-swapped
	f.relay.proc.kill()
	waitFor(t, 20*time.Second, "the new version to fail to reach the stopped relay", func() bool {
		s := a.log.String()
		i := strings.Index(s, "upgrade: running the new version")
		return i >= 0 && strings.Contains(s[i:], `"retry_in"`)
	})
	f.relay.Start()
	wout, errOut, err := f.cli.Try("jobs", "watch", jobID, "-o", "json")
	var j apiv1.Job
	if jerr := json.Unmarshal([]byte(wout), &j); jerr != nil || err != nil {
		t.Fatalf("jobs watch: %v %v\n%s\n%s", err, jerr, wout, errOut)
	}
	if len(j.Results) != 1 || j.Results[0].State != "succeeded" || j.Results[0].Version != upNew {
		t.Fatalf("after the relay restart: %+v", j.Results)
	}
	if n := a.log.Count("upgrade: fetching and verifying the release"); n != 1 {
		t.Fatalf("the agent began the upgrade %d times", n)
	}
	if n := a.log.Count("upgrade succeeded: connected on the new version"); n != 1 {
		t.Fatalf("the agent reported success %d times", n)
	}
	sameFile(t, a.Exe, newBin, "upgraded executable")
}
