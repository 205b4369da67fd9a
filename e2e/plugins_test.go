package e2e

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// signer is an OpenSSH key pair made with ssh-keygen for a test.
type signer struct {
	Key, Pub, Principal string
}

func newSigner(t *testing.T, principal string) signer {
	t.Helper()
	key := filepath.Join(t.TempDir(), "signing_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return signer{Key: key, Pub: key + ".pub", Principal: principal}
}

// allowedSigners writes an allowed_signers file trusting s.
func (s signer) allowedSigners(t *testing.T) string {
	t.Helper()
	pub, err := os.ReadFile(s.Pub)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "allowed_signers")
	fields := strings.Fields(string(pub))
	line := s.Principal + ` namespaces="patchbay-plugin" ` + fields[0] + " " + fields[1] + "\n"
	if err := os.WriteFile(f, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// copyFile copies a built plugin so that each test signs its own copy.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// publish signs a plugin with s (patchbay plugins sign) and publishes it.
func (c *CLI) publish(t *testing.T, s signer, plugin string) {
	t.Helper()
	p := copyFile(t, plugin)
	c.Run("plugins", "sign", "--key", s.Key, p)
	c.Run("plugins", "publish", p)
}

// runJob runs patchbay run ... --wait -o json and decodes the job; the
// exit status is returned as err (non-zero when an agent failed).
func (c *CLI) runJob(t *testing.T, args ...string) (apiv1.Job, error) {
	t.Helper()
	out, errOut, err := c.Try(append(append([]string{"run"}, args...), "--wait", "-o", "json")...)
	var j apiv1.Job
	if jerr := json.Unmarshal([]byte(out), &j); jerr != nil {
		t.Fatalf("patchbay run %v: %v (exit %v)\nstdout: %s\nstderr: %s", args, jerr, err, out, errOut)
	}
	return j, err
}

func onlyResult(t *testing.T, j apiv1.Job) apiv1.RunResult {
	t.Helper()
	if len(j.Results) != 1 {
		t.Fatalf("job has %d results, want 1: %+v", len(j.Results), j)
	}
	return j.Results[0]
}

// pluginFleet is a relay, an admin CLI, a trusted signer and one agent
// enrolled with --trust, started.
type pluginFleet struct {
	relay *Relay
	cli   *CLI
	good  signer
	agent *Agent
}

func newPluginFleet(t *testing.T) *pluginFleet {
	r := StartRelay(t)
	cli := r.Login(r.AdminToken())
	good := newSigner(t, "secops@example.com")
	a := r.Enroll(cli.Token("--tags", "fleet=plugins"), "--trust", good.allowedSigners(t)).Start()
	waitFor(t, 10*time.Second, "agent online", func() bool { return cli.Online(a.ID) })
	return &pluginFleet{relay: r, cli: cli, good: good, agent: a}
}

func TestPluginRunsSignedAndRefusesTheRest(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))

	// A signed plugin runs: Check, then Fix, output and signer reported.
	j, err := cli.runJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=hello from the fix")
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	r := onlyResult(t, j)
	if j.State != "done" || r.State != "succeeded" || !strings.Contains(r.Output, "hello from the fix") ||
		!strings.Contains(r.Signer, "secops@example.com") || !r.Changed {
		t.Fatalf("job = %+v", j)
	}
	// Check finding nothing: skipped, and Fix never ran.
	j, _ = cli.runJob(t, "testplugin", "--target", target, "--param", "mode=clean")
	if r := onlyResult(t, j); r.State != "skipped" || r.Summary != "nothing to do" {
		t.Fatalf("clean run = %+v", r)
	}
	// Dry run: Check only.
	count := filepath.Join(t.TempDir(), "count")
	j, _ = cli.runJob(t, "testplugin", "--target", target, "--param", "countfile="+count, "--dry-run")
	if r := onlyResult(t, j); r.State != "succeeded" || !r.Needed {
		t.Fatalf("dry run = %+v", r)
	}
	if _, err := os.Stat(count); err == nil {
		t.Fatal("a dry run executed Fix")
	}
	// Bad parameters are refused by the relay before any agent is asked.
	_, errOut, err := cli.Try("run", "testplugin", "--target", target, "--param", "mode=rm-rf")
	if err == nil || !strings.Contains(errOut, "not one of") {
		t.Fatalf("bad param: err=%v stderr=%s", err, errOut)
	}

	// A newer version signed by a key the agent does not trust: refused,
	// nothing executes.
	evil := newSigner(t, "mallory@example.com")
	cli.publish(t, evil, bin("plugins/testplugin-1.1.0"))
	pid := filepath.Join(t.TempDir(), "pid")
	j, err = cli.runJob(t, "testplugin", "--target", target, "--param", "mode=spawn", "--param", "pidfile="+pid)
	r = onlyResult(t, j)
	if err == nil || r.State != "failed" || !strings.Contains(r.Error, "does not trust") {
		t.Fatalf("untrusted plugin: err=%v result=%+v", err, r)
	}
	if _, err := os.Stat(pid); err == nil {
		t.Fatal("an untrusted plugin ran")
	}
	// The older, trusted version is still runnable by naming it.
	j, err = cli.runJob(t, "testplugin", "--version", "1.0.0", "--target", target, "--param", "mode=echo", "--param", "text=ok")
	if err != nil || onlyResult(t, j).State != "succeeded" {
		t.Fatalf("pinned version: %v %+v", err, j)
	}
}

func TestCompromisedRelayCannotSwapPluginBytes(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))
	var arts []struct {
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(cli.Run("plugins", "list", "-o", "json")), &arts); err != nil || len(arts) != 1 {
		t.Fatalf("plugins list: %v %v", err, arts)
	}
	// The relay's database is edited behind its back: the stored bytes of
	// the signed plugin are replaced by other bytes (same length, one byte
	// flipped), as a compromised relay would.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.relay.Dir, "patchbay.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var content []byte
	if err := db.QueryRow(`SELECT content FROM artifact_blobs WHERE sha256 = $1`, arts[0].SHA256).Scan(&content); err != nil {
		t.Fatal(err)
	}
	content[1000] ^= 0xff
	if _, err := db.Exec(`UPDATE artifact_blobs SET content = $1 WHERE sha256 = $2`, content, arts[0].SHA256); err != nil {
		t.Fatal(err)
	}
	j, err := cli.runJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=x")
	r := onlyResult(t, j)
	if err == nil || r.State != "failed" || !strings.Contains(r.Error, "not the requested") {
		t.Fatalf("tampered bytes: err=%v result=%+v", err, r)
	}
}

func TestMisbehavingPluginsAreKilledAndTheAgentCarriesOn(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/testplugin"))

	pid := filepath.Join(t.TempDir(), "child.pid")
	cases := []struct {
		name, want string
		args       []string
	}{
		{"hang", "timed out", []string{"--param", "mode=hang", "--timeout", "3s"}},
		{"spawn", "timed out", []string{"--param", "mode=spawn", "--param", "pidfile=" + pid, "--timeout", "3s"}},
		{"flood", "more than", []string{"--param", "mode=flood"}},
		{"crash", "exited unexpectedly", []string{"--param", "mode=crash"}},
		{"fail", "deliberate failure", []string{"--param", "mode=fail"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			j, err := cli.runJob(t, append([]string{"testplugin", "--target", target}, tc.args...)...)
			r := onlyResult(t, j)
			if err == nil || r.State != "failed" || !strings.Contains(r.Error, tc.want) {
				t.Fatalf("err=%v result=%+v", err, r)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
	// The child the spawning plugin started went with its process group.
	b, err := os.ReadFile(pid)
	if err != nil {
		t.Fatalf("spawn mode wrote no pid: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, 5*time.Second, "the plugin's child to be killed", func() bool {
		return syscall.Kill(n, 0) != nil
	})
	// And the agent still works.
	j, err := cli.runJob(t, "testplugin", "--target", target, "--param", "mode=echo", "--param", "text=still here")
	if err != nil || onlyResult(t, j).State != "succeeded" {
		t.Fatalf("after misbehaving plugins: %v %+v", err, j)
	}
	if f.agent.proc.exited() {
		t.Fatal("the agent exited")
	}
}

func TestRealPluginsAndHostileScriptParameters(t *testing.T) {
	f := newPluginFleet(t)
	cli, target := f.cli, "id="+f.agent.ID
	cli.publish(t, f.good, bin("plugins/sysinfo"))
	cli.publish(t, f.good, bin("plugins/script"))

	j, err := cli.runJob(t, "sysinfo", "--target", target)
	if err != nil {
		t.Fatalf("sysinfo: %v %+v", err, j)
	}
	if r := onlyResult(t, j); !strings.Contains(r.Summary, "load") {
		t.Fatalf("sysinfo summary = %q", r.Summary)
	}

	// A signed script that prints its parameter byte for byte.
	dir := t.TempDir()
	script := filepath.Join(dir, "echo-param.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# patchbay:begin\n# name: echo-param\n# description: prints x\n# os: linux, darwin\n# param: x string -- any text\n# patchbay:end\nprintf 'X=[%s]\\n' \"$PATCHBAY_PARAM_X\"\n"), 0o644)
	cli.Run("plugins", "sign", "--key", f.good.Key, script)
	cli.Run("scripts", "publish", script)

	marker := filepath.Join(dir, "pwned")
	for _, hostile := range []string{
		"$(touch " + marker + ")", "`touch " + marker + "`", "'; touch " + marker + " #", `"quoted" \back`, "a\nb; touch " + marker,
	} {
		j, err := cli.runJob(t, "script", "--target", target, "--param", "name=echo-param", "--param", "x="+hostile)
		r := onlyResult(t, j)
		if err != nil || r.State != "succeeded" || !strings.Contains(r.Output, "X=["+hostile+"]") {
			t.Fatalf("param %q: err=%v result=%+v", hostile, err, r)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a hostile parameter was executed")
	}
	// A parameter the script does not declare is refused by the agent.
	j, _ = cli.runJob(t, "script", "--target", target, "--param", "name=echo-param", "--param", "y=1")
	if r := onlyResult(t, j); r.State != "failed" || !strings.Contains(r.Error, "unknown parameter") {
		t.Fatalf("undeclared param: %+v", r)
	}
}
