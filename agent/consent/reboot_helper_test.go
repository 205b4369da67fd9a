//go:build linux

package consent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// zenityScript is the real zenity tool (its arguments and exit codes) over
// a script that stands in for zenity: it writes its arguments to a file and
// answers the way the body says.
func zenityScript(t *testing.T, body string) (*dialogTool, string) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	path := writeScript(t, dir, "zenity", fmt.Sprintf("for a in \"$@\"; do echo \"$a\" >> %q; done\n%s\n", args, body))
	return zenityTool(path), args
}

func TestRebootThroughHelper(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	// Nobody's helper is connected yet: nobody is logged in, restart now.
	if d := c.DecideReboot(context.Background(), rebootRequest()); d.Choice != ChoiceNow || d.By != ByNoUser {
		t.Fatalf("decision without a helper = %+v", d)
	}
	// zenity prints the extra button's label and exits 1.
	tool, args := zenityScript(t, `case "$*" in *--extra-button*) echo "In 1 hour"; exit 1;; esac; exit 1`)
	runTestHelper(t, c, "x11::5", tool)
	<-arrived
	d := c.DecideReboot(context.Background(), rebootRequest())
	if d.Choice != ChoiceHour || d.By != me(t).Username || d.Text() != "restart: in 1 hour at "+d.When.Local().Format("15:04")+", chosen by "+me(t).Username {
		t.Fatalf("decision = %+v (%s)", d, d.Text())
	}
	got := strings.Join(readLines(t, args), "\n")
	for _, want := range []string{"--question", "--ok-label=Restart now", "--extra-button=In 1 hour", "--cancel-label=Tonight", "--default-cancel",
		"Patchbay: a fix asks to restart this computer", "Fix: plugin patchinstall 1.0.0: Installs updates", "or tonight at 22:00?"} {
		if !strings.Contains(got, want) {
			t.Errorf("the dialog's arguments lack %q:\n%s", want, got)
		}
	}
}

func TestRebootHelperClosedMeansTonight(t *testing.T) {
	arrived := make(chan string, 1)
	c := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	tool, _ := zenityScript(t, "exit 1") // Tonight, or the window closed
	runTestHelper(t, c, "x11::5", tool)
	<-arrived
	d := c.DecideReboot(context.Background(), rebootRequest())
	if d.Choice != ChoiceTonight || d.By != me(t).Username {
		t.Fatalf("decision = %+v", d)
	}
	// Restart now: zenity's OK.
	c2 := startHelperConsent(t, Policy{Timeout: 20 * time.Second}, &fakeSessions{}, "x11::5", arrived)
	tool2, _ := zenityScript(t, "exit 0")
	runTestHelper(t, c2, "x11::5", tool2)
	<-arrived
	if d := c2.DecideReboot(context.Background(), rebootRequest()); d.Choice != ChoiceNow || d.By != me(t).Username {
		t.Fatalf("decision = %+v", d)
	}
}

func TestRebootHelperRejectsBadChoice(t *testing.T) {
	if _, err := decodeHelperMsg([]byte(`{"type":"answer","id":"x","approved":true,"choice":"later"}`)); err == nil {
		t.Fatal("an answer with an unknown choice was accepted")
	}
	if m, err := decodeHelperMsg([]byte(`{"type":"answer","id":"x","approved":true,"choice":"tonight"}`)); err != nil || m.Choice != ChoiceTonight {
		t.Fatalf("decode = %+v, %v", m, err)
	}
}
