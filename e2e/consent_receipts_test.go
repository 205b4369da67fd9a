package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/server/store"
)

// auditRecords returns the whole audit log as the relay serves it.
func (c *CLI) auditRecords(t *testing.T) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if err := json.Unmarshal([]byte(c.Run("audit", "list", "--after", "0", "--limit", "100000", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// verifyFails runs audit verify and checks that it fails at record seq
// with want in its message.
func (c *CLI) verifyFails(t *testing.T, seq int64, want string) {
	t.Helper()
	_, stderr, err := c.Try("audit", "verify")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 ||
		!strings.Contains(stderr, fmt.Sprintf("BROKEN at record %d:", seq)) || !strings.Contains(stderr, want) {
		t.Fatalf("audit verify: err %v, stderr %q; want a failure at record %d with %q", err, stderr, seq, want)
	}
}

// forger is someone with write access to the relay's database: it appends
// records with our own store code, so the hash chain and its head are
// recomputed as the relay would, and can take its last forgery back.
type forger struct {
	t  *testing.T
	st *store.Store
	db *sql.DB
}

func newForger(t *testing.T, r *Relay) *forger {
	t.Helper()
	path := filepath.Join(r.Dir, "patchbay.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &forger{t: t, st: st, db: db}
}

func (f *forger) append(rec audit.Record) int64 {
	f.t.Helper()
	got, err := f.st.AppendAudit(context.Background(), rec)
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Seq
}

// undo removes the last record and moves the head back to the one before.
func (f *forger) undo(seq int64) {
	f.t.Helper()
	var prev string
	if err := f.db.QueryRow(`SELECT prev_hash FROM audit_log WHERE seq = $1`, seq).Scan(&prev); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.Exec(`DELETE FROM audit_log WHERE seq = $1`, seq); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.Exec(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, seq-1, prev); err != nil {
		f.t.Fatal(err)
	}
}

func findAction(recs []audit.Record, action string) (audit.Record, bool) {
	for _, r := range recs {
		if r.Action == action {
			return r, true
		}
	}
	return audit.Record{}, false
}

// Each decision the endpoint makes reaches the audit log signed by the
// agent's key; audit verify checks the signatures, and a consent record
// forged in the relay's database (with a recomputed hash chain) fails it.
func TestConsentReceiptsInAuditAndForgeriesFail(t *testing.T) {
	f := newSessionFleet(t)
	if out, stderr, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-7 signed", "--", "true"); err != nil {
		t.Fatalf("approved session: %v %s %s", err, out, stderr)
	}
	f.setAnswer(t, "deny")
	if _, _, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-8 refused", "--", "true"); err == nil {
		t.Fatal("denied session ran")
	}
	if out := f.admin.Run("audit", "verify"); !strings.Contains(out, "audit log verified") {
		t.Fatalf("audit verify: %q", out)
	}

	recs := f.admin.auditRecords(t)
	decoded := map[string]receipt.Receipt{}
	for _, r := range recs {
		s, ok, err := receipt.FromDetail(r.Detail)
		if err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
		if !ok {
			continue
		}
		rc, err := receipt.Decode(s.Receipt)
		if err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
		if rc.ID != r.Target || rc.AgentID != f.agent.ID || rc.Technician != "alice" {
			t.Errorf("record %d (%s) carries %+v", r.Seq, r.Action, rc)
		}
		decoded[r.Action] = rc
	}
	if rc := decoded["session.approved"]; rc.Decision != receipt.Approved || rc.By != "jane" || rc.Reason != "INC-7 signed" {
		t.Errorf("approval receipt: %+v", rc)
	}
	if rc := decoded["session.denied"]; rc.Decision != receipt.Denied || rc.Reason != "INC-8 refused" || !strings.Contains(rc.Message, "presenting") {
		t.Errorf("denial receipt: %+v", rc)
	}
	if rc := decoded["session.end"]; rc.Decision != receipt.Ended || rc.By == "" {
		t.Errorf("end receipt: %+v", rc)
	}

	fg := newForger(t, f.r)
	approved, _ := findAction(recs, "session.approved")
	denied, _ := findAction(recs, "session.denied")
	forgedID := "0193a1b2-0000-7000-8000-00000000f0f0"
	actor := "agent " + f.agent.ID + " (jane)"

	// An approval nobody gave: no receipt.
	seq := fg.append(audit.Record{Actor: actor, Action: "session.approved", Target: forgedID,
		Detail: map[string]string{"technician": "mallory", "by": "jane", "capabilities": "[shell]"}})
	f.admin.verifyFails(t, seq, "session.approved record without a receipt signed by the agent")
	fg.undo(seq)
	if out := f.admin.Run("audit", "verify"); !strings.Contains(out, "audit log verified") {
		t.Fatalf("audit verify after the forgery was taken back: %q", out)
	}

	// A real approval's receipt copied onto another session.
	d := map[string]string{}
	for k, v := range approved.Detail {
		d[k] = v
	}
	seq = fg.append(audit.Record{Actor: actor, Action: "session.approved", Target: forgedID, Detail: d})
	f.admin.verifyFails(t, seq, "the receipt is for session "+approved.Target)
	fg.undo(seq)

	// The denial turned into an approval of the same session.
	seq = fg.append(audit.Record{Actor: actor, Action: "session.approved", Target: denied.Target, Detail: denied.Detail})
	f.admin.verifyFails(t, seq, "the receipt says denied")
	fg.undo(seq)

	// The receipt itself rewritten to say approved.
	d = map[string]string{}
	for k, v := range denied.Detail {
		d[k] = v
	}
	d[receipt.DetailReceipt] = strings.Replace(d[receipt.DetailReceipt], `"decision":"denied"`, `"decision":"approved"`, 1)
	seq = fg.append(audit.Record{Actor: actor, Action: "session.approved", Target: denied.Target, Detail: d})
	f.admin.verifyFails(t, seq, "bad signature")
	fg.undo(seq)
}

// A consent answer that does not verify against the agent's certificate on
// record is refused: the session does not start, the relay logs why, and
// no approval is recorded.
func TestUnverifiableConsentAnswerDoesNotStart(t *testing.T) {
	f := newSessionFleet(t)
	other := f.r.Enroll(f.admin.Token()) // enrolled, never run: its certificate is on record
	fg := newForger(t, f.r)
	if _, err := fg.db.Exec(`UPDATE agents SET cert = (SELECT cert FROM agents WHERE id = $1) WHERE id = $2`, other.ID, f.agent.ID); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	_, stderr, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-9", "--", "touch", marker)
	if err == nil || !strings.Contains(stderr, "not validly signed") {
		t.Fatalf("session with an unverifiable answer: err %v, stderr %q", err, stderr)
	}
	waitFor(t, 5*time.Second, "the relay to log the refused answer", func() bool {
		return f.r.Log().Count("consent answer refused") > 0
	})
	if !strings.Contains(f.r.Log().String(), "other than the one on record") {
		t.Errorf("relay log does not say why:\n%s", tail(f.r.Log().String(), 3000))
	}
	for _, s := range f.alice.sessions(t) {
		if s.State != "failed" || s.Started != nil {
			t.Errorf("session listed as %+v", s)
		}
	}
	recs := f.admin.auditRecords(t)
	if _, ok := findAction(recs, "session.approved"); ok {
		t.Error("an approval was recorded")
	}
	if end, ok := findAction(recs, "session.end"); !ok || end.Detail["by"] != "relay" || !strings.Contains(end.Detail["reason"], "not validly signed") {
		t.Errorf("session.end record: %+v", end)
	}
	if out := f.admin.Run("audit", "verify"); !strings.Contains(out, "audit log verified") {
		t.Fatalf("audit verify: %q", out)
	}
}

// The technician sees the wait: who is asked and how long is left, on the
// CLI and in the API's session status, then the decision with its reason.
func TestTechnicianSeesTheWaitAndTheReason(t *testing.T) {
	f := newSessionFleet(t, "--consent-timeout", "4s")
	f.setAnswer(t, "hang")
	cmd := exec.Command(bin("patchbay"), "ssh", f.agent.ID, "--reason", "INC-11 <b>wait</b>", "--", "true")
	cmd.Env = append(os.Environ(), f.alice.env...)
	var stderr logBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// While the user is asked, the API says so.
	var id string
	waitFor(t, 10*time.Second, "the session to be listed", func() bool {
		if l := f.alice.sessions(t); len(l) > 0 {
			id = l[0].ID
		}
		return id != ""
	})
	var s apiv1.Session
	waitFor(t, 10*time.Second, "the session status to name who is asked", func() bool {
		if err := json.Unmarshal([]byte(f.alice.Run("sessions", "show", id, "-o", "json")), &s); err != nil {
			t.Fatal(err)
		}
		return s.Consent.Asking != ""
	})
	if s.Consent.Decision != "pending" || s.Consent.Deadline == nil || s.Consent.SecondsLeft == nil || *s.Consent.SecondsLeft > 4 ||
		!strings.HasPrefix(s.Consent.Asking, "the user at ") {
		t.Errorf("session status while waiting: %+v", s.Consent)
	}
	err := cmd.Wait()
	out := stderr.String()
	if err == nil || !strings.Contains(out, "waiting for the user at ") || !strings.Contains(out, " s left)") ||
		!strings.Contains(out, "no answer within 4s") {
		t.Errorf("unanswered: err %v, stderr %q", err, out)
	}
	if strings.Count(out, "waiting for") != 1 || strings.Contains(out, "\r") {
		t.Errorf("not a terminal: want one waiting line and no redraws, got %q", out)
	}

	f.setAnswer(t, "deny")
	_, errOut, err := f.alice.Try("ssh", f.agent.ID, "--reason", "INC-12", "--", "true")
	if err == nil || !strings.Contains(errOut, "waiting for the user at") || !strings.Contains(errOut, "not now, I am presenting") {
		t.Errorf("denied: err %v, stderr %q", err, errOut)
	}
	f.setAnswer(t, "approve")
	_, errOut, err = f.alice.Try("ssh", f.agent.ID, "--reason", "INC-13", "--", "true")
	if err != nil || !strings.Contains(errOut, "approved by jane (exec)") {
		t.Errorf("approved: err %v, stderr %q", err, errOut)
	}
}

// A reason is required: the CLI names the flag, OpenSSH through patchbay
// proxy names the variable, and the relay refuses an empty one unless it
// was started with --allow-empty-reason.
func TestReasonRequiredUnlessTheRelayAllowsNone(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	f := newSessionFleet(t)
	for _, args := range [][]string{{"ssh", f.agent.ID, "--", "true"}, {"proxy", f.agent.ID}} {
		_, stderr, err := f.alice.Try(args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr, "--reason") || !strings.Contains(stderr, "required") {
			t.Errorf("%s without a reason: err %v, stderr %q", args[0], err, stderr)
		}
	}
	cfg := f.alice.sshConfig(t)
	_, stderr, err := try(nil, "ssh", "-F", cfg, f.agent.ID+".patchbay", "true")
	if err == nil || !strings.Contains(stderr, "$PATCHBAY_REASON") {
		t.Errorf("OpenSSH without a reason: err %v, stderr %q", err, stderr)
	}
	_, stderr, err = f.alice.Try("ssh", f.agent.ID, "--reason", "", "--", "true")
	if err == nil || !strings.Contains(stderr, "a reason is required") {
		t.Errorf("empty reason: err %v, stderr %q", err, stderr)
	}
	if asked, _ := os.ReadFile(f.asked); len(asked) != 0 {
		t.Errorf("a request without a reason reached the consent backend:\n%s", asked)
	}

	r := StartRelayArgs(t, "--allow-empty-reason")
	admin := r.Login(r.AdminToken())
	agent := r.Enroll(admin.Token())
	agent.StartWith("--consent-mode", "unattended")
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(agent.ID) })
	waitFor(t, 10*time.Second, "agent host certificate", func() bool {
		_, err := os.Stat(filepath.Join(agent.Dir, "ssh_host_ed25519_key-cert.pub"))
		return err == nil
	})
	if out, stderr, err := admin.Try("ssh", agent.ID, "--reason", "", "--", "echo", "ok"); err != nil || out != "ok\n" {
		t.Errorf("empty reason on a relay that allows it: %v %q %q", err, out, stderr)
	}
}
