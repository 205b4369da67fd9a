package sshd

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/testtool"
	"github.com/patchbay/patchbay/internal/wire"
)

// openssh returns a command running OpenSSH's tool name ("ssh", "scp",
// "sftp") with the fixture's config, reaching sv through the proxy.
func (f *fixture) openssh(sv *served, name string, args ...string) *exec.Cmd {
	f.t.Helper()
	path := testtool.Need(f.t, name, "openssh-client")
	cmd := exec.Command(path, append([]string{"-F", f.sshConfig}, args...)...)
	cmd.Env = append(os.Environ(), proxyEnv+"="+sv.addr)
	cmd.Dir = f.dir
	return cmd
}

// runOpenSSH runs a command and returns stdout, stderr and the exit code.
func runOpenSSH(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("%s: %v", cmd, err)
	return "", "", -1
}

func TestOpenSSHExec(t *testing.T) {
	f := newFixture(t)
	sv := f.serve(f.config(wire.CapExec))
	out, errOut, code := runOpenSSH(t, f.openssh(sv, "ssh", testHost, "echo", "hello"))
	if out != "hello\n" || code != 0 {
		t.Errorf("ssh echo hello: %q, stderr %q, exit %d", out, errOut, code)
	}
	if err := sv.wait(t, 5*time.Second); err != nil {
		t.Errorf("Serve: %v", err)
	}

	sv = f.serve(f.config(wire.CapExec))
	if _, errOut, code := runOpenSSH(t, f.openssh(sv, "ssh", testHost, "exit 3")); code != 3 {
		t.Errorf("ssh 'exit 3': exit %d, stderr %q", code, errOut)
	}

	// A capability that was not approved: a message and a failure.
	sv = f.serve(f.config(wire.CapShell))
	out, errOut, code = runOpenSSH(t, f.openssh(sv, "ssh", testHost, "echo", "hello"))
	if code != 1 || out != "" || !strings.Contains(errOut, `patchbay: command refused: it needs the "exec" capability`) {
		t.Errorf("exec with only shell: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestOpenSSHAuthRefused(t *testing.T) {
	f := newFixture(t)
	other, err := certs.LoadOrCreateSSHCAs(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	for name, signer := range map[string]ssh.Signer{
		"another CA":         f.certSigner(other, testTech, time.Hour, time.Now()),
		"another technician": f.certSigner(f.cas, "bob", time.Hour, time.Now()),
	} {
		t.Run(name, func(t *testing.T) {
			certFile := filepath.Join(t.TempDir(), "cert.pub")
			if err := os.WriteFile(certFile, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
				t.Fatal(err)
			}
			sv := f.serve(f.config(wire.CapExec))
			cmd := f.openssh(sv, "ssh", testHost, "echo", "hello")
			cmd.Args[2] = f.writeSSHConfig(t.TempDir(), certFile)
			out, errOut, code := runOpenSSH(t, cmd)
			if code != 255 || out != "" || !strings.Contains(errOut, "Permission denied (publickey)") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if err := sv.wait(t, 5*time.Second); err == nil {
				t.Error("Serve returned nil after a refused login")
			}
		})
	}
}

func TestOpenSSHShell(t *testing.T) {
	f := newFixture(t)
	rec := &recordSink{}
	cfg := f.config(wire.CapShell)
	cfg.Record = rec.record
	sv := f.serve(cfg)
	cmd := f.openssh(sv, "ssh", "-tt", testHost)
	cmd.Stdin = strings.NewReader("echo hi-$((40+2))\rexit\r")
	out, errOut, code := runOpenSSH(t, cmd)
	if code != 0 || !strings.Contains(out, "hi-42") {
		t.Errorf("ssh -tt: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := sv.wait(t, 5*time.Second); err != nil {
		t.Errorf("Serve: %v", err)
	}
	_, evs := rec.events(t)
	if in := joinEvents(evs, "i"); !strings.Contains(in, "echo hi-$((40+2))") {
		t.Errorf("input not recorded: %q", in)
	}
	if o := joinEvents(evs, "o"); !strings.Contains(o, "hi-42") {
		t.Errorf("output not recorded: %q", o)
	}
}

func TestOpenSSHForward(t *testing.T) {
	f := newFixture(t)
	echo := echoServer(t)
	sv := f.serve(f.config(wire.CapForward))
	cmd := f.openssh(sv, "ssh", "-W", echo, testHost)
	cmd.Stdin = strings.NewReader("hello through -W\n")
	out, errOut, code := runOpenSSH(t, cmd)
	if code != 0 || out != "hello through -W\n" {
		t.Errorf("ssh -W %s: exit %d, stdout %q, stderr %q", echo, code, out, errOut)
	}

	sv = f.serve(f.config(wire.CapForward))
	cmd = f.openssh(sv, "ssh", "-v", "-W", "192.0.2.1:3389", testHost) // -v: ssh -W shows the reason only as debug output
	_, errOut, code = runOpenSSH(t, cmd)
	if code == 0 || !strings.Contains(errOut, "only this machine's loopback") {
		t.Errorf("ssh -W to another host: exit %d, stderr %q", code, errOut)
	}
}

// TestOpenSSHFileCopy copies a 5 MB file each way with scp (sftp protocol and
// legacy -O) and sftp, with only the sftp capability approved.
func TestOpenSSHFileCopy(t *testing.T) {
	f := newFixture(t)
	data := make([]byte, 5<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "local")
	remote := filepath.Join(t.TempDir(), "remote dir") // a space, as users have
	for _, d := range []string{local, remote} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(local, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(what, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", what, err)
		} else if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes differ from the %d sent", what, len(got), len(data))
		}
	}
	run := func(what string, args ...string) {
		t.Helper()
		sv := f.serve(f.config(wire.CapSFTP))
		out, errOut, code := runOpenSSH(t, f.openssh(sv, args[0], args[1:]...))
		if code != 0 {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", what, code, out, errOut)
		}
		if err := sv.wait(t, 10*time.Second); err != nil {
			t.Errorf("%s: Serve: %v", what, err)
		}
	}
	// scp of OpenSSH 9 speaks sftp: the remote path is taken as it is.
	run("scp upload", "scp", "-q", src, testHost+":"+remote+"/up.bin")
	check("scp upload", filepath.Join(remote, "up.bin"))
	run("scp download", "scp", "-q", testHost+":"+remote+"/up.bin", filepath.Join(local, "down.bin"))
	check("scp download", filepath.Join(local, "down.bin"))

	// Legacy scp runs `scp -t`/`scp -f` through the shell: quote for it.
	run("scp -O upload", "scp", "-O", "-q", src, testHost+":'"+remote+"/legacy.bin'")
	check("scp -O upload", filepath.Join(remote, "legacy.bin"))
	// (the client checks the name it gets back against the unquoted request: escape the space)
	run("scp -O download", "scp", "-O", "-q", testHost+":"+strings.ReplaceAll(remote, " ", `\ `)+"/legacy.bin", filepath.Join(local, "legacy-down.bin"))
	check("scp -O download", filepath.Join(local, "legacy-down.bin"))

	batch := filepath.Join(t.TempDir(), "batch")
	script := "put " + src + " \"" + remote + "/sftp.bin\"\nget \"" + remote + "/sftp.bin\" " + filepath.Join(local, "sftp-down.bin") + "\n"
	if err := os.WriteFile(batch, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	run("sftp", "sftp", "-q", "-b", batch, testHost)
	check("sftp put", filepath.Join(remote, "sftp.bin"))
	check("sftp get", filepath.Join(local, "sftp-down.bin"))

	// With only sftp approved, a command that merely starts like scp is refused.
	sv := f.serve(f.config(wire.CapSFTP))
	_, errOut, code := runOpenSSH(t, f.openssh(sv, "ssh", testHost, "scp -t /tmp; id"))
	if code == 0 || !strings.Contains(errOut, `needs the "exec" capability`) {
		t.Errorf("disguised command: exit %d, stderr %q", code, errOut)
	}
}

// TestOpenSSHCancelWithCause ends a running session from the agent's side.
func TestOpenSSHCancelWithCause(t *testing.T) {
	f := newFixture(t)
	sv := f.serve(f.config(wire.CapExec))
	cmd := f.openssh(sv, "ssh", testHost, "echo ready; sleep 60")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	go func() { exited <- cmd.Wait() }()

	cause := errors.New("ended by the user at the machine")
	start := time.Now()
	sv.cancel(cause)
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("ssh still running 5s after the cancel")
	}
	took := time.Since(start)
	t.Logf("ssh exited %v after the cancel", took)
	if took > time.Second {
		t.Errorf("ssh exited %v after the cancel, want within a second", took)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 255 {
		t.Errorf("ssh: %v, want exit status 255", werr)
	}
	if !strings.Contains(stderr.String(), "patchbay: session ended: ended by the user at the machine") {
		t.Errorf("stderr %q", stderr.String())
	}
	if err := sv.wait(t, 2*time.Second); !errors.Is(err, cause) {
		t.Errorf("Serve: %v, want the cause", err)
	}
}
