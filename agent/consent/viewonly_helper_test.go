//go:build linux

package consent

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// The desktop question through the real helper protocol, answered by a
// zenity-compatible dialog script (as the restart question's tests do).
func TestViewOnlyThroughHelper(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	// zenity prints the extra button's label and exits 1; OK exits 0.
	tool, args := zenityScript(t, `case "$*" in *"Reason: view"*) echo "View only"; exit 1;; *"Reason: full"*) exit 0;; esac; exit 1`)
	runTestHelper(t, c, "x11::5", tool)
	<-arrived
	user := me(t).Username
	for _, tc := range []struct {
		reason   string
		approved bool
		choice   string
		message  string
	}{
		{"view", true, ChoiceViewOnly, "approved view only by " + user + " at the machine"},
		{"full", true, "", "approved by " + user + " at the machine"},
		{"deny", false, "", "denied by the user"},
	} {
		d := c.Decide(context.Background(), desktopRequest("h-"+tc.reason, tc.reason, wire.CapDesktop))
		if d.Approved != tc.approved || d.Choice != tc.choice || d.Message != tc.message || d.By != user {
			t.Fatalf("%s: decision = %+v", tc.reason, d)
		}
	}
	got := strings.Join(readLines(t, args), "\n")
	for _, want := range []string{"--question", "--ok-label=Allow full control", "--extra-button=View only", "--cancel-label=Deny", "--default-cancel",
		"Patchbay: remote session request", "  - see and control your screen",
		"View only: the technician sees your screen but cannot type or click."} {
		if !strings.Contains(got, want) {
			t.Errorf("the dialog's arguments lack %q:\n%s", want, got)
		}
	}

	// A request without the screen is the plain question.
	before := len(readLines(t, args))
	if d := c.Decide(context.Background(), desktopRequest("h-shell", "full", wire.CapSFTP)); !d.Approved || d.Choice != "" {
		t.Fatalf("decision = %+v", d)
	}
	plain := strings.Join(readLines(t, args)[before:], "\n")
	if !strings.Contains(plain, "--ok-label=Allow\n") || strings.Contains(plain, "--extra-button") || strings.Contains(plain, "View only") {
		t.Errorf("a request without the screen asked:\n%s", plain)
	}
}

func TestViewOnlyPolicyThroughHelper(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second, Desktop: DesktopViewOnly}, &fakeSessions{}, "x11::5", arrived)
	tool, args := zenityScript(t, `case "$*" in *"Reason: yes"*) exit 0;; esac; exit 1`)
	runTestHelper(t, c, "x11::5", tool)
	<-arrived
	d := c.Decide(context.Background(), desktopRequest("hv-1", "yes", wire.CapDesktop))
	if !d.Approved || d.Choice != ChoiceViewOnly || d.Message != "approved view only by "+me(t).Username+" at the machine" {
		t.Fatalf("decision = %+v", d)
	}
	if d := c.Decide(context.Background(), desktopRequest("hv-2", "no", wire.CapDesktop)); d.Approved || d.Choice != "" {
		t.Fatalf("decision = %+v", d)
	}
	got := strings.Join(readLines(t, args), "\n")
	for _, want := range []string{"--ok-label=Allow view only", "--cancel-label=Deny", "  - see your screen (view only)",
		"This computer's policy allows view only: the technician sees your screen but cannot type or click."} {
		if !strings.Contains(got, want) {
			t.Errorf("the dialog's arguments lack %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"--extra-button", "control your screen", "full control"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("the view-only prompt offers %q:\n%s", unwanted, got)
		}
	}
}

// A helper's answer whose choice does not fit the request is a denial.
func TestViewOnlyHelperChoiceMustFit(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	conn, err := net.Dial("unix", c.policy.HelperSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	conn.Write([]byte(`{"type":"hello","user":"` + me(t).Username + `","session":"x11::5"}` + "\n"))
	<-arrived
	// askAndAnswer waits for the ask of id and answers it with choice.
	askAndAnswer := func(id, wantDesktop, choice string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read from the service: %v", err)
			}
			m, err := decodeHelperMsg([]byte(strings.TrimSpace(line)))
			if err != nil {
				t.Fatalf("the service sent %q: %v", line, err)
			}
			if m.Type != helperAsk || m.ID != id {
				continue
			}
			if m.Request.Desktop != wantDesktop {
				t.Errorf("ask %s: desktop %q, want %q", id, m.Request.Desktop, wantDesktop)
			}
			conn.Write(encodeHelperMsg(helperMsg{Type: helperAnswer, ID: id, Approved: true, Choice: choice}))
			return
		}
	}
	ch := decideAsync(context.Background(), c, desktopRequest("bad-1", "r", wire.CapDesktop))
	askAndAnswer("bad-1", DesktopControl, ChoiceNow)
	if d := await(t, ch, 10*time.Second); d.Approved || d.Choice != "" || !strings.Contains(d.Message, `the answer carried choice "now"`) {
		t.Fatalf("a restart choice on a session: %+v", d)
	}
	ch = decideAsync(context.Background(), c, desktopRequest("fit-2", "r", wire.CapSFTP))
	askAndAnswer("fit-2", "", ChoiceViewOnly)
	if d := await(t, ch, 10*time.Second); !d.Approved || d.Choice != "" {
		t.Fatalf("view only on a request without the screen: %+v, want approved, nothing to narrow", d)
	}
	// An unknown choice breaks the protocol: the helper is dropped.
	if _, err := decodeHelperMsg([]byte(`{"type":"answer","id":"x","approved":true,"choice":"watch"}`)); err == nil ||
		!strings.Contains(err.Error(), "want now, 1h, tonight or view-only") {
		t.Fatalf("an answer with an unknown choice: %v", err)
	}
}

// The desktop backend's own dialog: kdialog's Yes / No / Cancel are Allow
// full control / View only / Deny.
func TestViewOnlyDesktopKdialog(t *testing.T) {
	for _, tc := range []struct {
		exit     string
		approved bool
		choice   string
		message  string
	}{
		{"0", true, "", "approved with full control by the user in a kdialog dialog"},
		{"1", true, ChoiceViewOnly, "approved view only by the user in a kdialog dialog"},
		{"2", false, "", "denied by the user"},
	} {
		t.Run("exit "+tc.exit, func(t *testing.T) {
			dir := fakeDesktop(t, "kdialog")
			writeFile(t, filepath.Join(dir, "kdialog.exit"), tc.exit, 0o600)
			c := start(t, Policy{Backend: "desktop", Timeout: 20 * time.Second}, nil, options{})
			d := c.Decide(context.Background(), desktopRequest("k-1", "INC-3", wire.CapDesktop))
			if d.Approved != tc.approved || d.Choice != tc.choice || d.Message != tc.message || d.By != currentUser() {
				t.Errorf("decision = %+v", d)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "kdialog.args"))
			if !strings.HasPrefix(string(b), "--title\n"+promptTitle+"\n--yes-label\nAllow full control\n--no-label\nView only\n--cancel-label\nDeny\n--yesnocancel\n") {
				t.Errorf("kdialog arguments:\n%s", b)
			}
		})
	}
}
