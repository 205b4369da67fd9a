package jobs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

// A receipt goes into the audit record only when it is about this run, its
// job and agent, and says what the result says.
func TestMatchReceipt(t *testing.T) {
	const run, job, agent = "0193a1b2-0000-7000-8000-000000000001", "0193a1b2-0000-7000-8000-000000000002", "0193a1b2-0000-7000-8000-000000000003"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(r receipt.Receipt) receipt.Signed {
		data, sig, err := receipt.Sign(key, r)
		if err != nil {
			t.Fatal(err)
		}
		return receipt.Signed{Receipt: data, Signature: sig, Cert: []byte{1}}
	}
	good := receipt.Receipt{Kind: receipt.KindFix, ID: run, JobID: job, AgentID: agent, Fix: "script x 1.0.0",
		Decision: receipt.Denied, By: "bob", Message: "denied by the user", Time: time.Now()}
	if err := matchReceipt(sign(good), run, job, agent, false); err != nil {
		t.Fatalf("matching receipt refused: %v", err)
	}
	other := "0193a1b2-0000-7000-8000-000000000009"
	for _, tt := range []struct {
		name     string
		edit     func(r *receipt.Receipt)
		approved bool
		want     string
	}{
		{"another run", func(r *receipt.Receipt) { r.ID = other }, false, "for run"},
		{"another job", func(r *receipt.Receipt) { r.JobID = other }, false, "for job"},
		{"another agent", func(r *receipt.Receipt) { r.AgentID = other }, false, "names agent"},
		{"another decision", func(r *receipt.Receipt) {}, true, "says denied"},
		{"a session", func(r *receipt.Receipt) { r.Kind, r.JobID, r.Technician = receipt.KindSession, "", "alice" }, false, "kind"},
	} {
		r := good
		tt.edit(&r)
		if err := matchReceipt(sign(r), run, job, agent, tt.approved); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	if err := matchReceipt(receipt.Signed{Receipt: []byte("{}"), Signature: []byte{1}, Cert: []byte{1}}, run, job, agent, false); err == nil {
		t.Error("a receipt that does not decode was accepted")
	}
}
