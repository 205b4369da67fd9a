package wire

import (
	"testing"
	"time"
)

// FuzzDecodeChecks feeds arbitrary control payloads to the check message
// decoders: none may panic, and whatever one accepts is within its limits.
func FuzzDecodeChecks(f *testing.F) {
	id := "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e"
	for _, s := range []string{
		`{"type":"policies","body":{"policies":[{"id":"` + id + `","name":"disk","check":"builtin:disk-space","params":{"path":"/"},"interval":"5m","fix":true,"max_fixes_day":3}]}}`,
		`{"type":"check_results","body":{"results":[{"id":"` + id + `","policy_id":"` + id + `","state":"failed","summary":"x","at":"2026-12-07T00:00:00Z"}]}}`,
		`{"type":"check_ack","body":{"ids":["` + id + `"]}}`,
		`{"type":"policies_request","body":{"proto":1}}`,
		`{"type":"selfheal","body":{"request_id":"` + id + `","policy_id":"` + id + `"}}`,
		`{"type":"selfheal_answer","body":{"request_id":"` + id + `","refused":"limit"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		var p Policies
		if DecodeBody(env, &p) == nil && len(p.Policies) > MaxPolicies {
			t.Fatal("too many policies accepted")
		}
		var r CheckResults
		if DecodeBody(env, &r) == nil && (len(r.Results) > MaxCheckResults || len(r.Results) == 0) {
			t.Fatal("result count outside limits accepted")
		}
		var pr PoliciesRequest
		_ = DecodeBody(env, &pr)
		var a CheckAck
		_ = DecodeBody(env, &a)
		var s SelfHeal
		_ = DecodeBody(env, &s)
		var sa SelfHealAnswer
		_ = DecodeBody(env, &sa)
	})
}

func TestCheckMessages(t *testing.T) {
	id := "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e"
	good := Policies{Policies: []Policy{{ID: id, Name: "disk", Check: "builtin:disk-space", Interval: Duration(time.Minute)}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Policy{
		"short interval": {ID: id, Name: "disk", Check: "builtin:disk-space", Interval: Duration(time.Second)},
		"bad check":      {ID: id, Name: "disk", Check: "builtin:Disk Space", Interval: Duration(time.Minute)},
		"bad name":       {ID: id, Name: "-x", Check: "cacheclear", Interval: Duration(time.Minute)},
	} {
		m := Policies{Policies: []Policy{p}}
		if m.Validate() == nil {
			t.Errorf("%s accepted", name)
		}
	}
	r := CheckResults{Results: []CheckResult{{ID: id, PolicyID: id, State: "weird", At: time.Now()}}}
	if r.Validate() == nil {
		t.Error("unknown state accepted")
	}
	if (&SelfHealAnswer{RequestID: id}).Validate() == nil {
		t.Error("answer with neither job nor reason accepted")
	}
}
