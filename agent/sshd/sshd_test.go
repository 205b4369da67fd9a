package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/asciicast"
	"github.com/patchbay/patchbay/internal/wire"
)

// proxyEnv makes the test binary act as an OpenSSH ProxyCommand: it connects
// its stdin and stdout to the TCP address in the variable.
const proxyEnv = "PATCHBAY_SSHD_TEST_PROXY"

func TestMain(m *testing.M) {
	if addr := os.Getenv(proxyEnv); addr != "" {
		os.Exit(runProxy(addr))
	}
	if code, ok := sessionHelperMain(); ok {
		os.Exit(code)
	}
	code := m.Run()
	if code == 0 {
		code = checkNoLeftovers()
	}
	os.Exit(code)
}

// checkNoLeftovers fails the run if any goroutine of this package outlived
// the tests: Serve must wait for everything it started.
func checkNoLeftovers() int {
	var stacks string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := false
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "agent/sshd.") && !strings.Contains(g, "agent/sshd.TestMain") && !strings.Contains(g, "agent/sshd.checkNoLeftovers") && !strings.Contains(g, "agent/sshd.echoServer") {
				leaked = true
			}
		}
		if !leaked {
			return 0
		}
	}
	_, _ = os.Stderr.WriteString("goroutines of package sshd still running after the tests:\n" + stacks)
	return 1
}

func runProxy(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		_, _ = os.Stderr.WriteString("proxy: " + err.Error() + "\n")
		return 1
	}
	go func() {
		_, _ = io.Copy(c, os.Stdin)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(os.Stdout, c)
	return 0
}

const (
	testTech  = "alice"
	testAgent = "agent-1"
	testHost  = testAgent + ".patchbay"
)

// syncBuffer is a bytes.Buffer safe for concurrent use (logs, stderr).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture holds the CAs, keys and OpenSSH files of a test.
type fixture struct {
	t          *testing.T
	dir        string
	cas        *certs.SSHCAs
	hostSigner ssh.Signer
	userPriv   ed25519.PrivateKey
	userKey    ssh.Signer // the technician's plain key
	userSigner ssh.Signer // the key with its certificate
	logs       *syncBuffer
	sshConfig  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	cas, err := certs.LoadOrCreateSSHCAs(filepath.Join(f.dir, "relay"))
	if err != nil {
		t.Fatal(err)
	}
	f.cas = cas
	hostKey := newKey(t)
	hostCert, err := cas.SignHostCert(hostKey.PublicKey(), testAgent, []string{testAgent, testHost}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.hostSigner, err = ssh.NewCertSigner(hostCert, hostKey); err != nil {
		t.Fatal(err)
	}
	_, f.userPriv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if f.userKey, err = ssh.NewSignerFromKey(f.userPriv); err != nil {
		t.Fatal(err)
	}
	f.userSigner = f.certSigner(cas, testTech, time.Hour, time.Now())
	f.writeOpenSSHFiles()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	return f
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// certSigner certifies f.userKey with cas for technician.
func (f *fixture) certSigner(cas *certs.SSHCAs, technician string, ttl time.Duration, now time.Time) ssh.Signer {
	cert, err := cas.SignUserCert(f.userKey.PublicKey(), technician, ttl, now)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(cert, f.userKey)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) config(caps ...string) Config {
	return Config{
		HostSigner:   f.hostSigner,
		UserCA:       f.cas.User.PublicKey(),
		Technician:   testTech,
		Capabilities: caps,
		Shell:        "/bin/sh",
		Dir:          f.dir,
		Log:          zerolog.New(f.logs).With().Timestamp().Logger(),
	}
}

// served is one Serve call on one loopback TCP connection.
type served struct {
	addr   string
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
}

// serve runs Serve for the first connection to a new loopback listener. The
// test's cleanup cancels it and waits for it to return.
func (f *fixture) serve(cfg Config) *served {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	sv := &served{addr: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sv.done)
		c, err := ln.Accept()
		_ = ln.Close()
		if err != nil {
			sv.err = err
			return
		}
		sv.err = Serve(ctx, c, cfg)
	}()
	f.t.Cleanup(func() {
		_ = ln.Close()
		cancel(errors.New("test over"))
		select {
		case <-sv.done:
		case <-time.After(10 * time.Second):
			f.t.Error("Serve did not return within 10s of the test's end")
		}
	})
	return sv
}

// wait waits for Serve to return and gives its error.
func (sv *served) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-sv.done:
		return sv.err
	case <-time.After(within):
		t.Fatalf("Serve did not return within %v", within)
		return nil
	}
}

func (f *fixture) hostChecker() ssh.HostKeyCallback {
	c := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return bytes.Equal(auth.Marshal(), f.cas.Host.PublicKey().Marshal())
		},
	}
	return c.CheckHostKey
}

// dial connects an x/crypto client to sv with the given auth.
func (f *fixture) dial(sv *served, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	conn, err := net.Dial("tcp", sv.addr)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{User: "someone", Auth: auth, HostKeyCallback: f.hostChecker(), Timeout: 20 * time.Second}
	c, chans, reqs, err := ssh.NewClientConn(conn, testHost+":22", cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// client dials sv as the technician and closes the client at the test's end.
func (f *fixture) client(sv *served) *ssh.Client {
	f.t.Helper()
	c, err := f.dial(sv, ssh.PublicKeys(f.userSigner))
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

// sessionStderr opens a session whose stderr is read, after a refused
// request, by the returned function (which closes the session).
func (f *fixture) sessionStderr(c *ssh.Client) (*ssh.Session, func() string) {
	f.t.Helper()
	s := f.session(c)
	pipe, err := s.StderrPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	return s, func() string {
		_ = s.Close()
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(pipe)
			got <- b
		}()
		select {
		case b := <-got:
			return string(b)
		case <-time.After(5 * time.Second):
			f.t.Error("stderr not closed within 5s")
			return ""
		}
	}
}

func (f *fixture) session(c *ssh.Client) *ssh.Session {
	f.t.Helper()
	s, err := c.NewSession()
	if err != nil {
		f.t.Fatalf("new session: %v", err)
	}
	return s
}

// writeOpenSSHFiles writes the technician's key and certificate, known_hosts
// with the host CA line, and an ssh_config that reaches *.patchbay through
// this test binary as ProxyCommand.
func (f *fixture) writeOpenSSHFiles() {
	t := f.t
	dir := filepath.Join(f.dir, "openssh")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(f.userPriv, "alice@test")
	if err != nil {
		t.Fatal(err)
	}
	cert := f.userSigner.PublicKey().(*ssh.Certificate)
	files := map[string][]byte{
		"id_ed25519":          pem.EncodeToMemory(block),
		"id_ed25519-cert.pub": ssh.MarshalAuthorizedKey(cert),
		"known_hosts":         []byte(f.cas.KnownHostsLine() + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.sshConfig = f.writeSSHConfig(dir, filepath.Join(dir, "id_ed25519-cert.pub"))
}

// writeSSHConfig writes an ssh_config into dir that reaches *.patchbay through
// this test binary as ProxyCommand, with the given certificate file.
func (f *fixture) writeSSHConfig(dir, certFile string) string {
	exe, err := os.Executable()
	if err != nil {
		f.t.Fatal(err)
	}
	keys := filepath.Join(f.dir, "openssh")
	cfg := fmt.Sprintf(`Host *.patchbay
	User %s
	ProxyCommand %s
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	IdentityFile %s
	CertificateFile %s
	IdentitiesOnly yes
	IdentityAgent none
	BatchMode yes
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	ControlMaster no
	ControlPath none
	UpdateHostKeys no
	ServerAliveInterval 0
	LogLevel ERROR
`, testTech, exe, filepath.Join(keys, "known_hosts"), filepath.Join(keys, "id_ed25519"), certFile)
	path := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return path
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitStatus()
	}
	t.Fatalf("not an exit status: %v", err)
	return -1
}

func TestExec(t *testing.T) {
	f := newFixture(t)
	sv := f.serve(f.config(wire.CapExec))
	c := f.client(sv)

	out, err := f.session(c).Output("echo hello")
	if err != nil || string(out) != "hello\n" {
		t.Errorf("echo hello: %q, %v", out, err)
	}
	if code := exitCode(t, f.session(c).Run("exit 3")); code != 3 {
		t.Errorf("exit 3: status %d", code)
	}

	// Output and stderr both arrive before the exit status; stdin reaches the process.
	s := f.session(c)
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	s.Stdin = strings.NewReader(strings.Repeat("x", 100000))
	if err := s.Run("wc -c; echo oops >&2; pwd"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(stdout.String()); len(got) != 2 || got[0] != "100000" || got[1] != f.dir {
		t.Errorf("stdout %q, want 100000 and %s", stdout.String(), f.dir)
	}
	if stderr.String() != "oops\n" {
		t.Errorf("stderr %q", stderr.String())
	}

	// A process killed by a signal reports exit-signal.
	err = f.session(c).Run("kill -TERM $$")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Errorf("killed by TERM: %v", err)
	}

	// Only LANG, LC_* and TERM are taken from the client.
	s = f.session(c)
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Errorf("Setenv LANG: %v", err)
	}
	if err := s.Setenv("LC_TIME", "C"); err != nil {
		t.Errorf("Setenv LC_TIME: %v", err)
	}
	if err := s.Setenv("LD_PRELOAD", "/tmp/evil.so"); err == nil {
		t.Error("Setenv LD_PRELOAD accepted")
	}
	out, err = s.Output(`echo "$LANG $LC_TIME ${LD_PRELOAD-unset} $PATCHBAY_TECHNICIAN $USER"`)
	if err != nil || !strings.HasPrefix(string(out), "C.UTF-8 C unset alice ") {
		t.Errorf("environment: %q, %v", out, err)
	}

	// Keepalives are answered; remote forwarding and agent forwarding refused.
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil || ok {
		t.Errorf("keepalive: ok=%v err=%v, want an answer false", ok, err)
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding accepted")
	}
	s = f.session(c)
	if ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil); err != nil || ok {
		t.Errorf("agent forwarding: ok=%v err=%v", ok, err)
	}
	if ok, err := s.SendRequest("x11-req", true, ssh.Marshal(struct {
		Single        bool
		Proto, Cookie string
		Screen        uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0})); err != nil || ok {
		t.Errorf("X11 forwarding: ok=%v err=%v", ok, err)
	}
	_ = s.Close()

	_ = c.Close()
	if err := sv.wait(t, 5*time.Second); err != nil {
		t.Errorf("Serve after the client left: %v, want nil", err)
	}
}

func TestCapabilitiesEnforced(t *testing.T) {
	f := newFixture(t)
	sv := f.serve(f.config(wire.CapShell))
	c := f.client(sv)

	// Refused requests are accepted, so that clients show the message, and
	// end at once with exit status 1.
	s, stderr := f.sessionStderr(c)
	if code := exitCode(t, s.Run("echo hi")); code != 1 {
		t.Errorf("exec with only shell approved: exit status %d, want 1", code)
	}
	if got := stderr(); got != `patchbay: command refused: it needs the "exec" capability, and this session was approved for ["shell"]`+"\r\n" {
		t.Errorf("stderr %q", got)
	}

	s, stderr = f.sessionStderr(c)
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	if got := stderr(); !strings.Contains(got, `sftp refused: it needs the "sftp" capability`) {
		t.Errorf("stderr %q", got)
	}

	// A shell without a terminal would not be recorded: it needs exec too.
	cfg := f.config(wire.CapShell)
	cfg.Record = func(asciicast.Header) (io.WriteCloser, error) { return nopWriteCloser{io.Discard}, nil }
	sv2 := f.serve(cfg)
	s, stderr = f.sessionStderr(f.client(sv2))
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, s.Wait()); code != 1 {
		t.Errorf("unrecorded shell: exit status %d, want 1", code)
	}
	if got := stderr(); !strings.Contains(got, `a shell without a terminal is not recorded, so it needs the "exec" capability`) {
		t.Errorf("stderr %q", got)
	}

	// Forwarding needs "forward", with the capability named in the reason.
	_, err := c.Dial("tcp", "127.0.0.1:22")
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || !strings.Contains(oce.Message, `needs the "forward" capability`) {
		t.Errorf("forward without the capability: %v", err)
	}
	if !strings.Contains(f.logs.String(), `needs the \"exec\" capability`) {
		t.Error("refusal not logged")
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestAuthRefused(t *testing.T) {
	f := newFixture(t)
	otherCAs, err := certs.LoadOrCreateSSHCAs(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auth ssh.AuthMethod
		log  string
	}{
		{"another CA", ssh.PublicKeys(f.certSigner(otherCAs, testTech, time.Hour, time.Now())), "signed by another CA"},
		{"another technician", ssh.PublicKeys(f.certSigner(f.cas, "bob", time.Hour, time.Now())), `certificate key ID \"bob\", but the session was approved for technician \"alice\"`},
		{"expired", ssh.PublicKeys(f.certSigner(f.cas, testTech, time.Minute, time.Now().Add(-time.Hour))), "cert has expired"},
		{"plain key", ssh.PublicKeys(f.userKey), "a plain key, not a certificate"},
		{"password", ssh.Password("hunter2"), ""},
		{"keyboard-interactive", ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sv := f.serve(f.config(wire.CapExec))
			c, err := f.dial(sv, tc.auth)
			if err == nil {
				_ = c.Close()
				t.Fatal("authenticated")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("client error %v", err)
			}
			if err := sv.wait(t, 5*time.Second); err == nil || !strings.Contains(err.Error(), "handshake") {
				t.Errorf("Serve: %v, want a handshake error", err)
			}
			if tc.log != "" && !strings.Contains(f.logs.String(), tc.log) {
				t.Errorf("log lacks %q", tc.log)
			}
		})
	}
}

func TestPTYNeedsPermitPTY(t *testing.T) {
	f := newFixture(t)
	cert := &ssh.Certificate{
		Key: f.userKey.PublicKey(), CertType: ssh.UserCert, KeyId: testTech, ValidPrincipals: []string{testTech},
		ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, f.cas.User); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(cert, f.userKey)
	if err != nil {
		t.Fatal(err)
	}
	sv := f.serve(f.config(wire.CapShell, wire.CapForward))
	c, err := f.dial(sv, ssh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, stderr := f.sessionStderr(c)
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("terminal allowed without permit-pty")
	}
	if got := stderr(); !strings.Contains(got, "no permit-pty extension") {
		t.Errorf("stderr %q", got)
	}
	if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil || !strings.Contains(err.Error(), "no permit-port-forwarding extension") {
		t.Errorf("forward without permit-port-forwarding: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(wire.CapExec)
	cfg.IdleTimeout = time.Second
	sv := f.serve(cfg)
	c := f.client(sv)
	// Keepalives do not count as activity.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_, _, _ = c.SendRequest("keepalive@openssh.com", true, nil)
			}
		}
	}()
	s := f.session(c)
	var stderr syncBuffer
	s.Stderr = &stderr
	start := time.Now()
	err := s.Run("sleep 30")
	if code := exitCode(t, err); code != 255 {
		t.Errorf("exit status %d, want 255", code)
	}
	if el := time.Since(start); el < time.Second || el > 5*time.Second {
		t.Errorf("ended after %v, want about 1s", el)
	}
	if !strings.Contains(stderr.String(), "patchbay: session ended: idle for 1s\r\n") {
		t.Errorf("stderr %q", stderr.String())
	}
	if err := sv.wait(t, 5*time.Second); !errors.Is(err, ErrIdle) || err.Error() != "idle for 1s" {
		t.Errorf("Serve: %v, want ErrIdle", err)
	}
}

func TestMaxDuration(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(wire.CapExec)
	cfg.MaxDuration = 1500 * time.Millisecond
	cfg.IdleTimeout = time.Second // output keeps it from being idle
	sv := f.serve(cfg)
	s := f.session(f.client(sv))
	var stdout, stderr syncBuffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if code := exitCode(t, s.Run("while :; do echo tick; sleep 0.2; done")); code != 255 {
		t.Errorf("exit status %d, want 255", code)
	}
	if !strings.Contains(stderr.String(), "patchbay: session ended: maximum duration 1.5s reached\r\n") {
		t.Errorf("stderr %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "tick") {
		t.Errorf("stdout %q", stdout.String())
	}
	if err := sv.wait(t, 5*time.Second); !errors.Is(err, ErrMaxDuration) {
		t.Errorf("Serve: %v, want ErrMaxDuration", err)
	}
}

func TestForward(t *testing.T) {
	f := newFixture(t)
	echo := echoServer(t)
	sv := f.serve(f.config(wire.CapForward))
	c := f.client(sv)
	_, port, _ := net.SplitHostPort(echo)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		conn, err := c.Dial("tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("forward to %s: %v", host, err)
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Errorf("echo through %s: %q, %v", host, buf, err)
		}
		_ = conn.Close()
	}
	for _, dest := range []string{"192.0.2.1:80", "10.0.0.1:3389", "example.com:443", "[::ffff:10.0.0.1]:80", "0.0.0.0:" + port} {
		_, err := c.Dial("tcp", dest)
		if err == nil || !strings.Contains(err.Error(), "only this machine's loopback (127.0.0.0/8, ::1, localhost) may be reached") {
			t.Errorf("forward to %s: %v", dest, err)
		}
	}
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "connect to 127.0.0.1:1") {
		t.Errorf("forward to a closed port: %v", err)
	}
}

// echoServer echoes each connection back until EOF.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Errorf("process %d still running", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBackgroundProcessesKilled(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	f := newFixture(t)
	sv := f.serve(f.config(wire.CapExec))
	c := f.client(sv)
	// The background sleep keeps stdout open: the session still ends when sh does.
	start := time.Now()
	out, err := f.session(c).Output("sleep 300 & echo $!")
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("exec took %v", el)
	}
	var pid int
	if _, err := fmt.Sscan(string(out), &pid); err != nil {
		t.Fatalf("pid %q: %v", out, err)
	}
	waitGone(t, pid)
}
