package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The person at the machine, on a real X display: the agent runs as root
// (a service, no display) with the helper backend; a helper runs as an
// unprivileged local user in that user's X session (Xvfb started by that
// user, so the display is theirs), shows the prompts with zenity, and the
// test clicks them with xdotool.

// desktopTools are the programs these tests drive.
var desktopTools = []string{"Xvfb", "xdotool", "zenity", "import", "useradd", "userdel", "runuser"}

// requireDesktop fails, naming what is missing, when a desktop tool is not
// installed or the test cannot create users: these tests never skip
// (.ci/run installs the tools and runs as root).
func requireDesktop(t *testing.T) {
	t.Helper()
	for _, tool := range desktopTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install -y xvfb xdotool zenity imagemagick passwd (.ci/run does)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("the desktop consent tests create local users and run the agent as root: run them as root (CI does)")
	}
}

// localUser creates an unprivileged account for the test and removes it after.
func localUser(t *testing.T) *user.User {
	t.Helper()
	name := fmt.Sprintf("pbh%06d", rand.IntN(1000000))
	run(t, nil, "useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// desktop is an X display owned by a local user.
type desktop struct {
	user    *user.User
	display string // ":N"
}

// startDesktop runs Xvfb as u; the display is u's session "x11::N".
func startDesktop(t *testing.T, u *user.User) *desktop {
	t.Helper()
	// X servers put their sockets here; a missing directory would be created
	// by the user's Xvfb with the wrong owner and mode.
	if err := os.MkdirAll("/tmp/.X11-unix", 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod("/tmp/.X11-unix", 0o1777)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("runuser", "-u", u.Username, "--", "Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	ownGroup(cmd)
	var log logBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { killGroup(cmd); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var n string
	select {
	case n = <-line:
	case <-time.After(30 * time.Second):
	}
	if _, err := strconv.Atoi(n); err != nil {
		t.Fatalf("Xvfb did not report its display (%q): %s", n, log.String())
	}
	return &desktop{user: u, display: ":" + n}
}

// helperBin is a copy of patchbay-agent that any user may run (the build
// directory is private to root).
func helperBin(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pbhelper-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	src, err := os.Open(bin("patchbay-agent"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "patchbay-agent")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	return path
}

// helperCmd runs `patchbay-agent helper` as u in display, claiming session,
// in a process group of its own (runuser leaves its child behind when killed).
func helperCmd(helper, socket string, u *user.User, display, session string) *exec.Cmd {
	cmd := exec.Command("runuser", "-u", u.Username, "--", "env", "-i", "PATH=/usr/bin:/bin", "DISPLAY="+display, "HOME=/tmp",
		helper, "helper", "--socket", socket, "--session", session, "--log-format", "json", "--log-level", "debug")
	ownGroup(cmd)
	return cmd
}

// ownGroup starts cmd in a process group of its own, and makes Wait give up
// on output pipes a lingering grandchild still holds.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
}

// killGroup kills cmd's whole process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// xdo runs xdotool on the display.
func (d *desktop) xdo(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.display)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// window waits for a visible window whose title matches name and returns
// its geometry.
func (d *desktop) window(t *testing.T, name string, within time.Duration) (id string, x, y, w, h int) {
	t.Helper()
	waitFor(t, within, "a window "+strconv.Quote(name), func() bool {
		out, err := d.xdo("search", "--onlyvisible", "--name", name)
		if err != nil || out == "" {
			return false
		}
		id = strings.Fields(out)[0]
		geo, err := d.xdo("getwindowgeometry", "--shell", id)
		if err != nil {
			return false
		}
		vals := map[string]int{}
		for _, l := range strings.Split(geo, "\n") {
			k, v, _ := strings.Cut(l, "=")
			vals[k], _ = strconv.Atoi(v)
		}
		x, y, w, h = vals["X"], vals["Y"], vals["WIDTH"], vals["HEIGHT"]
		return w > 100 && h > 50
	})
	return
}

// click clicks at (x, y) on the display.
func (d *desktop) click(t *testing.T, x, y int) {
	t.Helper()
	if out, err := d.xdo("mousemove", "--sync", strconv.Itoa(x), strconv.Itoa(y), "click", "1"); err != nil {
		t.Fatalf("xdotool click: %v %s", err, out)
	}
}

// screenshot saves the display as a PNG among the test's artifacts.
func (d *desktop) screenshot(t *testing.T, name string) {
	t.Helper()
	path := filepath.Join(t.ArtifactDir(), name+".png")
	cmd := exec.Command("import", "-display", d.display, "-window", "root", path) // ImageMagick
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v %s", err, out)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("screenshot %s is missing or empty: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
}

// sshAsync starts `patchbay ssh` as the technician.
func sshAsync(t *testing.T, c *CLI, agent string, args ...string) (done <-chan error, stdout, stderr *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin("patchbay"), append([]string{"ssh", agent}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return ch, stdout, stderr
}

func waitExit(t *testing.T, ch <-chan error, within time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(within):
		t.Fatalf("%s: patchbay ssh did not end within %v", what, within)
		return nil
	}
}

const promptTitle, indicatorTitle = "Patchbay: remote session request", "Patchbay: remote session in progress"

func TestHelperPromptsInUsersDesktop(t *testing.T) {
	requireDesktop(t)
	t.Parallel()
	r := StartRelay(t)
	admin := r.Login(r.AdminToken())
	alice := r.Login(strings.TrimSpace(strings.SplitN(admin.Run("api-tokens", "create", "--role", "technician", "--name", "alice"), "\n", 2)[0]))
	u := localUser(t)
	d := startDesktop(t, u)
	session := "x11:" + d.display

	sockDir, err := os.MkdirTemp("", "pbhs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	os.Chmod(sockDir, 0o755)
	socket := filepath.Join(sockDir, "helper.sock")

	agent := r.Enroll(admin.Token())
	agent.StartWith("--consent-mode", "prompt", "--consent-backend", "helper", "--consent-helper-socket", socket,
		"--consent-ask", "all", "--consent-timeout", "8s")
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(agent.ID) })
	waitFor(t, 10*time.Second, "agent host certificate", func() bool {
		_, err := os.Stat(filepath.Join(agent.Dir, "ssh_host_ed25519_key-cert.pub"))
		return err == nil
	})
	helper := helperBin(t)
	hcmd := helperCmd(helper, socket, u, d.display, session)
	var hlog logBuffer
	hcmd.Stdout, hcmd.Stderr = &hlog, &hlog
	if err := hcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killGroup(hcmd)
		hcmd.Wait()
		if t.Failed() {
			t.Logf("--- helper output ---\n%s", tail(hlog.String(), 4096))
		}
	})
	waitFor(t, 20*time.Second, "the helper to connect", func() bool { return strings.Contains(hlog.String(), "connected to the agent") })

	// 1. Approve by a click: the command runs.
	start := time.Now()
	done, out, errOut := sshAsync(t, alice, agent.ID, "--reason", "INC-7 <b>printer</b>", "--", "echo $((6*7))")
	_, x, y, w, h := d.window(t, promptTitle, 30*time.Second)
	t.Logf("prompt visible %v after the technician's request", time.Since(start).Round(time.Millisecond))
	d.screenshot(t, "1-prompt")
	d.click(t, x+w-50, y+h-25) // Allow: the rightmost button
	if err := waitExit(t, done, 30*time.Second, "approved"); err != nil || strings.TrimSpace(out.String()) != "42" {
		t.Fatalf("approved session: %v, stdout %q, stderr %s", err, out, errOut)
	}

	// 2. Deny by a click.
	done, _, errOut = sshAsync(t, alice, agent.ID, "--reason", "INC-8", "--", "true")
	_, x, y, w, h = d.window(t, promptTitle, 30*time.Second)
	d.click(t, x+w-140, y+h-25) // Deny: left of Allow
	if err := waitExit(t, done, 30*time.Second, "denied"); err == nil || !strings.Contains(errOut.String(), "denied by the user") {
		t.Fatalf("denied session: %v, stderr %s", err, errOut)
	}

	// 3. Nobody answers: the prompt goes away and the request is denied.
	done, _, errOut = sshAsync(t, alice, agent.ID, "--reason", "INC-9", "--", "true")
	d.window(t, promptTitle, 30*time.Second)
	if err := waitExit(t, done, 40*time.Second, "unanswered"); err == nil || !strings.Contains(errOut.String(), "no answer within") {
		t.Fatalf("unanswered session: %v, stderr %s", err, errOut)
	}
	waitFor(t, 10*time.Second, "the expired prompt to close", func() bool {
		out, _ := d.xdo("search", "--onlyvisible", "--name", promptTitle)
		return out == ""
	})

	// 4. A live session shows the indicator; End session disconnects the
	// technician within a second.
	done, _, errOut = sshAsync(t, alice, agent.ID, "--reason", "INC-10", "--", "sleep 120")
	_, x, y, w, h = d.window(t, promptTitle, 30*time.Second)
	d.click(t, x+w-50, y+h-25)
	_, x, y, w, h = d.window(t, indicatorTitle, 30*time.Second)
	d.screenshot(t, "2-indicator")
	clicked := time.Now()      // the click itself counts: xdotool returns after the chain may have finished
	d.click(t, x+w-50, y+h-25) // End session
	if err := waitExit(t, done, 10*time.Second, "ended by the user"); err == nil {
		t.Error("a session the user ended exited 0")
	}
	el := time.Since(clicked)
	t.Logf("technician disconnected %v after End session", el.Round(time.Millisecond))
	if el > time.Second {
		t.Errorf("the technician was disconnected %v after End session, want within 1s", el)
	}
	if !strings.Contains(errOut.String(), "ended by the user") {
		t.Errorf("the technician was not told why: %s", errOut)
	}

	// 5. A helper of another user claiming this user's session is refused.
	mallory := localUser(t)
	mcmd := helperCmd(helper, socket, mallory, d.display, session)
	mout, err := mcmd.CombinedOutput()
	if err == nil || !strings.Contains(string(mout), "refused") || !strings.Contains(string(mout), "belongs to uid "+u.Uid) {
		t.Fatalf("helper claiming another user's session: %v\n%s", err, mout)
	}
	// And the legitimate helper still works (shown by the decisions above);
	// the relay's audit log has the user's decisions.
	audit := admin.Run("audit", "list", "-o", "json")
	if !strings.Contains(audit, `"session.approved"`) || !strings.Contains(audit, u.Username) {
		t.Errorf("audit log lacks the user's approval by %s:\n%s", u.Username, tail(audit, 2000))
	}
}
