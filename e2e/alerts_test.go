package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/alerts"
	"github.com/patchbay/patchbay/server/store"
)

// hookReceiver is a real webhook receiver: it checks every request's
// HMAC signature and keeps the events it accepted.
type hookReceiver struct {
	mu     sync.Mutex
	events []store.AlertEvent
	bad    int
	url    string
}

func startHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String() + "/hook"
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		var ev store.AlertEvent
		if !alerts.Verify([]byte(secret), r.Header.Get("X-Patchbay-Timestamp"), r.Header.Get("X-Patchbay-Signature"), body) ||
			json.Unmarshal(body, &ev) != nil {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.events = append(h.events, ev)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// has reports whether an event of kind happened to alert id.
func (h *hookReceiver) has(id, event string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev.Alert.ID == id && ev.Event == event {
			return true
		}
	}
	return false
}

func (c *CLI) alerts(t *testing.T, args ...string) []apiv1.Alert {
	t.Helper()
	var out []apiv1.Alert
	if err := json.Unmarshal([]byte(c.Run(append([]string{"alerts", "list", "-o", "json"}, args...)...)), &out); err != nil {
		t.Fatalf("alerts list: %v", err)
	}
	return out
}

// An agent offline longer than --alert-offline-after opens one alert (not
// one per look), which a signed webhook receives; it is acknowledged by a
// person and resolves by itself when the agent comes back.
func TestAlertAgentOfflineOpensAndResolvesItself(t *testing.T) {
	r := StartRelayArgs(t, "--alert-offline-after", "2s")
	cli := r.Login(r.AdminToken())
	secret := "e2e-hook-secret"
	hook := startHookReceiver(t, secret)
	secretFile := filepath.Join(t.TempDir(), "hook.key")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := cli.Run("alert-routes", "create", "--site", "all", "--min-severity", "warning", "--webhook", hook.url, "--secret-file", secretFile)
	if !strings.Contains(out, "Created alert route") {
		t.Fatalf("alert-routes create: %s", out)
	}
	if out := cli.Run("alert-routes", "list"); !strings.Contains(out, hook.url) || strings.Contains(out, secret) {
		t.Fatalf("alert-routes list:\n%s", out)
	}
	a := r.Enroll(cli.Token()).Start()
	waitFor(t, 20*time.Second, "agent online", func() bool { return cli.Online(a.ID) })
	a.proc.stop(t)

	var alert apiv1.Alert
	waitFor(t, 30*time.Second, "an agent_offline alert", func() bool {
		for _, x := range cli.alerts(t, "--state", "open", "--kind", "agent_offline") {
			if x.AgentID == a.ID {
				alert = x
				return true
			}
		}
		return false
	})
	if alert.Severity != "warning" || alert.Site != "default/default" {
		t.Fatalf("alert %+v", alert)
	}
	waitFor(t, 30*time.Second, "the webhook to receive the open event", func() bool { return hook.has(alert.ID, "open") })
	// The relay keeps looking (every 1s here): two more looks later there
	// is still one alert, counted once.
	looked := r.Log().Count("offline agents checked")
	waitFor(t, 30*time.Second, "two more looks for offline agents", func() bool { return r.Log().Count("offline agents checked") >= looked+2 })
	if n := r.Log().Count("alert opened"); n != 1 {
		t.Fatalf("%d alerts opened, want 1", n)
	}
	if got := cli.alerts(t, "--kind", "agent_offline"); len(got) != 1 || got[0].Count != 1 {
		t.Fatalf("agent_offline alerts: %+v", got)
	}
	// Acknowledge by a unique prefix.
	out = cli.Run("alerts", "ack", alert.ID[:18], "--note", "checking the machine")
	if !strings.Contains(out, "acknowledged") {
		t.Fatalf("alerts ack: %s", out)
	}
	waitFor(t, 30*time.Second, "the webhook to receive the ack event", func() bool { return hook.has(alert.ID, "ack") })
	if got := cli.alerts(t, "--state", "acknowledged"); len(got) != 1 || got[0].AckedBy == "" || got[0].Note != "checking the machine" {
		t.Fatalf("acknowledged alerts: %+v", got)
	}
	a.Start()
	waitFor(t, 30*time.Second, "the alert to resolve itself", func() bool {
		got := cli.alerts(t, "--state", "resolved")
		return len(got) == 1 && got[0].ID == alert.ID && got[0].ResolvedBy == "system"
	})
	waitFor(t, 30*time.Second, "the webhook to receive the resolve event", func() bool { return hook.has(alert.ID, "resolve") })
	if n := len(cli.alerts(t)); n != 1 {
		t.Fatalf("%d alerts in all, want 1", n)
	}
	// Resolving it again is refused; the audit log has every change.
	if _, errOut, err := cli.Try("alerts", "resolve", alert.ID); err == nil || !strings.Contains(errOut, "resolved already") {
		t.Fatalf("resolve a resolved alert: %v %s", err, errOut)
	}
	audit := cli.Run("audit", "list")
	for _, want := range []string{"alert.open", "alert.ack", "alert.resolve", "alert-route.create"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	hook.mu.Lock()
	bad := hook.bad
	hook.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d webhook requests with a bad signature", bad)
	}
}

// A job halted by its failure gate opens a critical job_halted alert.
func TestAlertJobHaltedByFailingCanary(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	f := newPluginFleet(t)
	f.fleetOf(t, 2)
	f.cli.publish(t, f.good, bin("plugins/testplugin"))
	j, err := f.cli.runJob(t, "testplugin", "--target", "fleet=plugins", "--canary", "1", "--max-failures", "0", "--param", "mode=fail")
	if err == nil || j.State != "halted" {
		t.Fatalf("job: %v %s", err, j.State)
	}
	var got []apiv1.Alert
	waitFor(t, 30*time.Second, "a job_halted alert", func() bool {
		got = f.cli.alerts(t, "--kind", "job_halted")
		return len(got) == 1
	})
	if x := got[0]; x.Check != j.ID || x.Severity != "critical" || x.State != "open" || !strings.Contains(x.Summary, "halted after 1 failures") {
		t.Fatalf("alert %+v", x)
	}
	if out := f.cli.Run("alerts", "resolve", got[0].ID, "--note", "bad parameter, fixed"); !strings.Contains(out, "resolved") {
		t.Fatalf("alerts resolve: %s", out)
	}
}
