//go:build !windows

// Package cupstest starts a private CUPS scheduler for tests (the
// printerreset plugin's and the agent's stuck-print-queue check's): cupsd as
// a child of the test, its files under t.TempDir(), on a loopback port.
package cupstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/lpstat"
	"github.com/patchbay/patchbay/internal/testtool"
)

// cupsTools are what the tests run: the scheduler and the client tools.
var cupsTools = []string{"cupsd", "lpadmin", "lp", "lpstat", "cancel", "cupsenable", "cupsdisable", "cupsaccept", "cupsreject"}

// Require fails the test when CUPS is not installed (or skips it with
// PATCHBAY_REQUIRE_TOOLS=0), naming the missing program and its package.
func Require(t testing.TB) {
	t.Helper()
	for _, name := range cupsTools {
		pkg := "cups-client"
		if name == "cupsd" {
			pkg = "cups"
		}
		testtool.Need(t, name, pkg)
	}
}

// Server is a private cupsd, a child of the test, with its configuration,
// spool, state and logs under t.TempDir() and listening on a random
// loopback port. It never touches the machine's own CUPS.
type Server struct {
	t    testing.TB
	Dir  string
	Addr string // 127.0.0.1:PORT, for CUPS_SERVER
}

// Start starts a private cupsd that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := tryStart(t, filepath.Join(t.TempDir(), "cups"))
		if err == nil {
			return c
		}
		lastErr = err // most likely the port was taken meanwhile: try another
	}
	t.Fatalf("start cupsd: %v", lastErr)
	return nil
}

func tryStart(t testing.TB, dir string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"root", "spool", "tmp", "cache", "state", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// cupsd running as root refuses User root and runs filters as lp; as
	// another user it can only run everything as that user.
	account := "SystemGroup root\n"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return nil, err
		}
		account = fmt.Sprintf("User %s\nGroup %s\nSystemGroup %s\n", u.Username, g.Name, g.Name)
	}
	files := fmt.Sprintf(`ServerRoot %[1]s/root
RequestRoot %[1]s/spool
TempDir %[1]s/tmp
CacheDir %[1]s/cache
StateDir %[1]s/state
AccessLog %[1]s/log/access_log
ErrorLog %[1]s/log/error_log
PageLog %[1]s/log/page_log
FileDevice Yes
%[2]s`, dir, account)
	conf := fmt.Sprintf(`Listen 127.0.0.1:%d
LogLevel debug
WebInterface No
Browsing No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
`, port)
	filesPath, confPath := filepath.Join(dir, "cups-files.conf"), filepath.Join(dir, "cupsd.conf")
	if err := os.WriteFile(filesPath, []byte(files), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cupsd := testtool.Need(t, "cupsd", "cups")
	if out, err := exec.CommandContext(t.Context(), cupsd, "-t", "-c", confPath, "-s", filesPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cupsd -t: %v\n%s", err, out)
	}
	// t.Context ends just before the cleanups run: cupsd gets SIGTERM then.
	cmd := exec.CommandContext(t.Context(), cupsd, "-f", "-c", confPath, "-s", filesPath)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	log, err := os.Create(filepath.Join(dir, "log", "cupsd.out"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cupsd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	c := &Server{t: t, Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("cupsd exited: %v\n%s", err, c.ErrorLog())
		default:
		}
		out, _ := c.Command("lpstat", "-r").Output()
		if strings.TrimSpace(string(out)) == "scheduler is running" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("cupsd did not answer within 20s\n%s", c.ErrorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(stop)
	return c, nil
}

// FreePort returns a loopback TCP port nothing listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ErrorLog returns the end of cupsd's error log, for failure messages.
func (c *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "log", "error_log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Command is a CUPS tool pointed at this scheduler, in the C locale.
func (c *Server) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(c.t.Context(), testtool.Need(c.t, name, "cups-client"), args...)
	cmd.Env = lpstat.Env(os.Environ(), c.Addr)
	return cmd
}

// Run runs a CUPS tool and fails the test if it fails.
func (c *Server) Run(name string, args ...string) string {
	c.t.Helper()
	out, err := c.Command(name, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, c.ErrorLog())
	}
	return string(out)
}

// AddQueue creates an enabled queue printing to /dev/null (CUPS 2.4 takes
// a queue without a PPD or -m; -m raw is deprecated and warns).
func (c *Server) AddQueue(name string) {
	c.t.Helper()
	c.Run("lpadmin", "-p", name, "-E", "-v", "file:///dev/null")
}

// Submit prints a small file to queue and returns the job id.
func (c *Server) Submit(queue string, opts ...string) string {
	c.t.Helper()
	doc := filepath.Join(c.Dir, "doc.txt")
	if err := os.WriteFile(doc, []byte("hello from a patchbay test\n"), 0o644); err != nil {
		c.t.Fatal(err)
	}
	out := c.Run("lp", append(append([]string{"-d", queue}, opts...), doc)...)
	// "request id is testq-1 (1 file(s))"
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "request" {
		c.t.Fatalf("lp: unexpected output %q", out)
	}
	return f[3]
}
