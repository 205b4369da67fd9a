package worker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/sdk/sdktest"
)

// These tests run the whole path of a fix that needs consent on the agent:
// the worker, the real runner launching real plugin subprocesses (the
// testplugin, and the script plugin with a signed script), and a real
// consent.Consent whose exec backend is a small program that approves or
// denies and writes down each request it is asked.

// files is the relay's catalog as the agent downloads from it: files and
// their signatures by SHA-256.
type files struct {
	mu sync.Mutex
	m  map[string][2][]byte
}

func (f *files) Fetch(_ context.Context, sha string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[sha]
	if !ok {
		return nil, nil, fmt.Errorf("404 %s", sha)
	}
	return e[0], e[1], nil
}

// consentRig is a signing key, a catalog and the signed artifacts.
type consentRig struct {
	key, trust string
	cat        *files
	testplugin wire.ArtifactRef
	script     wire.ArtifactRef
	scriptRef  wire.ArtifactRef
}

func newConsentRig(t *testing.T) *consentRig {
	t.Helper()
	dir := t.TempDir()
	rig := &consentRig{key: filepath.Join(dir, "key"), trust: filepath.Join(dir, "allowed_signers"), cat: &files{m: map[string][2][]byte{}}}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", rig.key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(rig.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fl := strings.Fields(string(pub))
	if err := os.WriteFile(rig.trust, []byte(`secops@example.com namespaces="patchbay-plugin" `+fl[0]+" "+fl[1]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rig.testplugin = rig.publish(t, "testplugin", "1.0.0", readFile(t, sdktest.Build(t, "github.com/patchbay/patchbay/plugins/sdk/testplugin")))
	rig.script = rig.publish(t, "script", "1.0.0", readFile(t, sdktest.Build(t, "github.com/patchbay/patchbay/plugins/script")))
	rig.scriptRef = rig.publish(t, "needs-ok", "1.2.0", []byte(`#!/bin/sh
# patchbay:begin
# name: needs-ok
# version: 1.2.0
# description: Appends a line to a file
# os: linux, darwin
# shell: sh
# needs_consent: true
# param: countfile string -- the file
# patchbay:end
echo ran >> "$PATCHBAY_PARAM_COUNTFILE"
echo fixed
`))
	return rig
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish signs data with ssh-keygen -Y sign, as a person would, and puts
// it in the catalog.
func (rig *consentRig) publish(t *testing.T, name, version string, data []byte) wire.ArtifactRef {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "patchbay-plugin", "-f", rig.key, f).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	sum := sha256.Sum256(data)
	ref := wire.ArtifactRef{Name: name, Version: version, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	rig.cat.mu.Lock()
	rig.cat.m[ref.SHA256] = [2][]byte{data, readFile(t, f+".sig")}
	rig.cat.mu.Unlock()
	return ref
}

// results is an outbox that hands each result over a channel.
type results struct{ ch chan wire.RunResult }

func (r *results) send(typ string, body any) error {
	if res, ok := body.(wire.RunResult); ok {
		r.ch <- res
	}
	return nil
}

func (r *results) next(t *testing.T, runID string) wire.RunResult {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case res := <-r.ch:
			if res.RunID == runID {
				return res
			}
		case <-timeout:
			t.Fatalf("no result for run %s within 60s", runID)
		}
	}
}

const testAgentID = "0190a8b2-7c1e-7d3a-9f00-000000000001"

// agentCert makes a certificate for testAgentID like the relay issues
// (ECDSA P-256, client auth, CN = the agent ID), self-signed, and a pool
// that trusts it.
func agentCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testAgentID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// checkReceipt verifies the signed receipt of c and returns it.
func checkReceipt(t *testing.T, c *wire.RunConsent, roots *x509.CertPool) receipt.Receipt {
	t.Helper()
	if c == nil || c.Receipt == nil {
		t.Fatalf("no signed receipt in %+v", c)
	}
	r, err := c.Receipt.Check(roots, testAgentID)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	return r
}

// consentAgent is a worker with a real runner and a real consent policy.
type consentAgent struct {
	w     *Worker
	out   *results
	asked string // the file the consent program appends each request to
	j     *journal.Journal
	roots *x509.CertPool // trusts the agent's certificate
}

// startConsentAgent starts a worker whose consent program approves (exit 0,
// by=alice) or denies ("denied by the user"). needs sets the testplugin's
// needs_consent.
func startConsentAgent(t *testing.T, rig *consentRig, approve, needs bool) *consentAgent {
	t.Helper()
	cert, roots := agentCert(t)
	a := startConsentAgentCert(t, rig, approve, needs, cert)
	a.roots = roots
	return a
}

// startConsentAgentCert is startConsentAgent with the agent's certificate.
func startConsentAgentCert(t *testing.T, rig *consentRig, approve, needs bool, cert tls.Certificate) *consentAgent {
	t.Helper()
	dir := t.TempDir()
	a := &consentAgent{out: &results{ch: make(chan wire.RunResult, 16)}, asked: filepath.Join(dir, "asked")}
	answer := "echo 'denied by the user' >&2\nexit 1"
	if approve {
		answer = "echo by=alice\nexit 0"
	}
	prog := filepath.Join(dir, "ask.sh")
	if err := os.WriteFile(prog, fmt.Appendf(nil, "#!/bin/sh\ncat >> %q\necho >> %q\n%s\n", a.asked, a.asked, answer), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prog, 0o755); err != nil { // whatever the umask: the backend refuses a group-writable program
		t.Fatal(err)
	}
	cons, err := consent.New(consent.Policy{Mode: consent.ModePrompt, Backend: "exec:" + prog, Timeout: 30 * time.Second}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "TMPDIR=" + os.TempDir()}
	if needs {
		env = append(env, "TESTPLUGIN_NEEDS_CONSENT=1")
	}
	r, err := runner.New(runner.Config{
		Dir: filepath.Join(dir, "runner"), Fetch: rig.cat, Env: env,
		Trust: func() (runner.Trust, error) { return runner.LoadTrust(rig.trust) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.j, err = journal.Open(filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	a.w = New(Config{Journal: a.j, Runner: r, Consent: cons, AgentID: testAgentID, Hostname: "pc-042", Cert: cert,
		Send: a.out.send, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		r.Close()
		cons.Close()
	})
	return a
}

// run sends req to the worker and returns its result.
func (a *consentAgent) run(t *testing.T, req wire.RunRequest) wire.RunResult {
	t.Helper()
	if err := a.w.Control(env(t, wire.MsgRun, req)); err != nil {
		t.Fatal(err)
	}
	return a.out.next(t, req.RunID)
}

// asks returns the requests the consent program was given.
func (a *consentAgent) asks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(a.asked)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (rig *consentRig) req(plugin wire.ArtifactRef, params map[string]string) wire.RunRequest {
	return wire.RunRequest{
		RunID: uuid.Must(uuid.NewV7()).String(), JobID: uuid.Must(uuid.NewV7()).String(),
		Plugin: plugin, Params: params, Timeout: wire.Duration(time.Minute), Requester: "bob@helpdesk", Reason: "INC-1234",
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestFixConsent(t *testing.T) {
	rig := newConsentRig(t)

	t.Run("approved: asked once, fix runs, decision in the result", func(t *testing.T) {
		a := startConsentAgent(t, rig, true, true)
		count := filepath.Join(t.TempDir(), "count")
		req := rig.req(rig.testplugin, map[string]string{"countfile": count})
		res := a.run(t, req)
		c := res.Consent
		if res.State != wire.StateSucceeded || c == nil || !c.Approved || c.By != "alice" || c.Mode != "prompt" || c.At.IsZero() {
			t.Fatalf("result = %+v, consent = %+v", res, c)
		}
		if n := countLines(t, count); n != 1 {
			t.Fatalf("Fix ran %d times, want 1", n)
		}
		// The decision is signed by the agent's key, for the audit log.
		r := checkReceipt(t, c, a.roots)
		if r.Kind != receipt.KindFix || r.ID != req.RunID || r.JobID != req.JobID || r.Decision != receipt.Approved || r.By != "alice" ||
			r.Technician != "bob@helpdesk" || r.Reason != "INC-1234" || r.Fix != "plugin testplugin 1.0.0" || !r.Time.Equal(c.At) {
			t.Fatalf("receipt = %+v", r)
		}
		asks := a.asks(t)
		if len(asks) != 1 || !strings.Contains(asks[0], req.RunID) || !strings.Contains(asks[0], "bob@helpdesk") ||
			!strings.Contains(asks[0], "INC-1234") {
			t.Fatalf("the consent program was asked %d times: %q", len(asks), asks)
		}
		// Delivered again (a reconnect): the journaled result is sent; nobody
		// is asked again and Fix does not run again.
		again := a.run(t, req)
		if again.State != wire.StateSucceeded || again.Consent == nil || !again.Consent.Approved {
			t.Fatalf("redelivered result = %+v", again)
		}
		if n, asks := countLines(t, count), a.asks(t); n != 1 || len(asks) != 1 {
			t.Fatalf("after redelivery: Fix ran %d times, asked %d times", n, len(asks))
		}
	})

	t.Run("denied: skipped with the reason, fix never runs", func(t *testing.T) {
		a := startConsentAgent(t, rig, false, true)
		count := filepath.Join(t.TempDir(), "count")
		res := a.run(t, rig.req(rig.testplugin, map[string]string{"countfile": count}))
		c := res.Consent
		if res.State != wire.StateSkipped || !res.Needed || res.Summary != "fix not run: denied by the user" || res.Error != "" ||
			c == nil || c.Approved || c.Message != "denied by the user" {
			t.Fatalf("result = %+v, consent = %+v", res, c)
		}
		if n := countLines(t, count); n != 0 {
			t.Fatalf("a denied Fix ran %d times", n)
		}
		if r := checkReceipt(t, c, a.roots); r.Decision != receipt.Denied || r.Message != "denied by the user" {
			t.Fatalf("receipt = %+v", r)
		}
		// The decision was journaled with the run.
		e, ok, err := a.j.Get(res.RunID)
		if err != nil || !ok || e.Consent == nil || e.Consent.Approved {
			t.Fatalf("journal entry = %+v, %v, %v", e, ok, err)
		}
	})

	t.Run("dry run and nothing to fix: never asked", func(t *testing.T) {
		a := startConsentAgent(t, rig, true, true)
		count := filepath.Join(t.TempDir(), "count")
		req := rig.req(rig.testplugin, map[string]string{"countfile": count})
		req.DryRun = true
		if res := a.run(t, req); res.State != wire.StateSucceeded || !res.Needed || res.Consent != nil {
			t.Fatalf("dry run = %+v", res)
		}
		if res := a.run(t, rig.req(rig.testplugin, map[string]string{"mode": "clean"})); res.State != wire.StateSkipped || res.Consent != nil {
			t.Fatalf("clean run = %+v", res)
		}
		if asks := a.asks(t); len(asks) != 0 || countLines(t, count) != 0 {
			t.Fatalf("asked %d times, Fix ran %d times", len(asks), countLines(t, count))
		}
	})

	t.Run("a plugin without needs_consent: never asked", func(t *testing.T) {
		a := startConsentAgent(t, rig, false, false)
		count := filepath.Join(t.TempDir(), "count")
		res := a.run(t, rig.req(rig.testplugin, map[string]string{"countfile": count}))
		if res.State != wire.StateSucceeded || res.Consent != nil || countLines(t, count) != 1 || len(a.asks(t)) != 0 {
			t.Fatalf("result = %+v; asked %d times", res, len(a.asks(t)))
		}
	})

	t.Run("an approval the agent cannot sign: the fix does not run", func(t *testing.T) {
		a := startConsentAgentCert(t, rig, true, true, tls.Certificate{})
		count := filepath.Join(t.TempDir(), "count")
		res := a.run(t, rig.req(rig.testplugin, map[string]string{"countfile": count}))
		c := res.Consent
		if res.State != wire.StateSkipped || c == nil || c.Approved || c.By != consent.ByAgent || c.Receipt != nil ||
			!strings.Contains(c.Message, "approved by alice, but the agent could not sign the decision") || countLines(t, count) != 0 {
			t.Fatalf("result = %+v, consent = %+v", res, c)
		}
	})

	t.Run("a script whose header says needs_consent: asked, denied", func(t *testing.T) {
		a := startConsentAgent(t, rig, false, false)
		count := filepath.Join(t.TempDir(), "count")
		req := rig.req(rig.script, map[string]string{"name": "needs-ok", "countfile": count})
		req.Script = &rig.scriptRef
		res := a.run(t, req)
		if res.State != wire.StateSkipped || res.Consent == nil || res.Consent.Approved || countLines(t, count) != 0 {
			t.Fatalf("result = %+v, consent = %+v", res, res.Consent)
		}
		if asks := a.asks(t); len(asks) != 1 {
			t.Fatalf("asked %d times", len(asks))
		}
	})

	t.Run("a script whose header says needs_consent: asked, approved", func(t *testing.T) {
		a := startConsentAgent(t, rig, true, false)
		count := filepath.Join(t.TempDir(), "count")
		req := rig.req(rig.script, map[string]string{"name": "needs-ok", "countfile": count})
		req.Script = &rig.scriptRef
		res := a.run(t, req)
		if res.State != wire.StateSucceeded || res.Consent == nil || !res.Consent.Approved || countLines(t, count) != 1 {
			t.Fatalf("result = %+v, consent = %+v", res, res.Consent)
		}
		if r := checkReceipt(t, res.Consent, a.roots); r.Fix != "script needs-ok 1.2.0" || r.Decision != receipt.Approved {
			t.Fatalf("receipt = %+v", r)
		}
	})
}
