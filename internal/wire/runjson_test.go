package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

// The fast path (fastjson.go, runjson.go) must write what json.Marshal
// writes and read what strictUnmarshal reads. FuzzDecode runs these checks
// on every input; the tests below pin the cases that matter most.

type runSeed struct {
	typ  string
	body any
}

func runSeeds() []runSeed {
	const id = "0193a1b2-0000-7000-8000-000000000001"
	t0 := time.Date(2026, 12, 3, 1, 2, 3, 456789000, time.UTC)
	plugin := ArtifactRef{Name: "sysinfo", Version: "1.2.0", SHA256: strings.Repeat("ab", 32), Size: 123456}
	return []runSeed{
		{MsgRun, RunRequest{RunID: id, JobID: id, Plugin: plugin, Timeout: Duration(30 * time.Minute), Requester: "admin"}},
		{MsgRun, &RunRequest{RunID: id, JobID: id, Plugin: plugin, Script: &ArtifactRef{Name: "flush-dns", Version: "1", SHA256: strings.Repeat("0", 64), Size: 1},
			Params: map[string]string{"name": "flush-dns", "b": "x<y & \"z\"\n", "a": "\u2028é"}, DryRun: true, Timeout: Duration(1500 * time.Microsecond),
			AllowDowngrade: true, Requester: "alice <a@example.com>", Reason: "INC-42: \"printer\" <jam>"}},
		{MsgRun, RunRequest{RunID: id, JobID: id, Plugin: plugin, Timeout: Duration(time.Hour), Requester: "schedule",
			Reboot: &RunReboot{Mode: RebootForceInWindow, WindowEnd: t0.Add(2 * time.Hour)}}},
		{MsgRun, RunRequest{RunID: id, JobID: id, Plugin: plugin, Timeout: Duration(time.Hour), Requester: "schedule",
			Reboot: &RunReboot{Mode: RebootNever}}},
		{MsgRunResult, RunResult{RunID: id, State: StateSucceeded, Needed: true, Summary: "no-op", Version: "1.2.0", Started: t0, Ended: t0.Add(time.Second)}},
		{MsgRunResult, &RunResult{RunID: id, State: StateFailed, Changed: true, RebootRequired: true, Summary: "s", Error: "exit 1\t\x01",
			Details: "{\"k\":1}", Output: "line 1\nline 2\r\n\xff\xfe", Signer: "alice SHA256:x", Version: "v",
			Started: t0.In(time.FixedZone("", 3600)), Ended: t0}},
		{MsgRunResult, RunResult{RunID: id, State: StateSkipped, Needed: true, Summary: "fix not run: denied by the user",
			Consent: &RunConsent{By: "alice", Message: "denied by the user", Mode: "prompt", At: t0}, Started: t0, Ended: t0}},
		{MsgRunResult, &RunResult{RunID: id, State: StateSucceeded, Changed: true,
			Consent: &RunConsent{Approved: true, By: "policy", At: t0.In(time.FixedZone("", -7200)),
				Receipt: &receipt.Signed{Receipt: []byte(`{"v":"x\u2028"}`), Signature: []byte{0, 1, 0xfe, 0xff}, Cert: []byte{}}}, Started: t0, Ended: t0}},
		{MsgRunStarted, RunStarted{RunID: id, Started: t0}},
		{MsgRunAck, RunAck{RunID: id}},
		{MsgRunCancel, &RunCancel{RunID: id}},
	}
}

// checkEncoders compares the fast encoders with json.Marshal on messages
// whose strings are s (any bytes, invalid UTF-8 included).
func checkEncoders(t *testing.T, s string) {
	t.Helper()
	bodies := []any{
		RunAck{RunID: s},
		RunStarted{RunID: s, Started: time.Unix(int64(len(s))*7919, int64(len(s))).UTC()},
		RunResult{RunID: s, State: s, Needed: len(s)%2 == 0, Changed: len(s)%3 == 0, Summary: s, Output: s + s, Version: s},
		RunResult{RunID: s, State: s, Consent: &RunConsent{Approved: len(s)%2 == 1, By: s, Message: s, Mode: s,
			Receipt: &receipt.Signed{Receipt: []byte(s), Signature: []byte(s + s)}, At: time.Unix(int64(len(s))*31, 0).UTC()}},
		RunRequest{RunID: s, JobID: s, Plugin: ArtifactRef{Name: s, Size: -int64(len(s))}, Params: map[string]string{s: s, "k": s},
			Timeout: Duration(len(s)) * Duration(time.Millisecond), Requester: s, Reason: s},
		RunRequest{RunID: s, Timeout: Duration(time.Second), Reboot: &RunReboot{Mode: s, WindowEnd: time.Unix(int64(len(s))*61, 0).UTC()}},
	}
	for _, body := range bodies {
		fast, ok := appendBody(nil, body)
		want, err := json.Marshal(body)
		if !ok || err != nil {
			if ok || err == nil {
				t.Fatalf("%T: fast ok=%v, json.Marshal error %v", body, ok, err)
			}
			continue
		}
		if !bytes.Equal(fast, want) {
			t.Fatalf("%T encoded as\n%s\nwant\n%s", body, fast, want)
		}
		env, err := NewEnvelope(s, s, body)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := AppendControl(nil, env) // the frame NewEnvelope wrote
		if err != nil {
			t.Fatal(err)
		}
		env.frame = nil
		copied, err := AppendControl(nil, env) // the fast envelope encoder
		if err != nil {
			t.Fatal(err)
		}
		env.made = nil
		slow, err := AppendControl(nil, env) // json.Marshal
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame, slow) || !bytes.Equal(copied, slow) {
			t.Fatalf("envelope encoded as\n%s\nand\n%s\nwant\n%s", frame, copied, slow)
		}
	}
}

// checkEnvelopeFastPath: when the fast envelope decoder accepts p, the
// strict decoder accepts it too and decodes the same.
func checkEnvelopeFastPath(t *testing.T, p []byte) {
	t.Helper()
	fast, ok := decodeEnvelope(p)
	if !ok {
		return
	}
	var slow Envelope
	if err := strictUnmarshal(p, &slow); err != nil {
		t.Fatalf("fast path accepted %q, strict decoder refused it: %v", p, err)
	}
	if fast.Type != slow.Type || fast.ID != slow.ID || !bytes.Equal(fast.Body, slow.Body) {
		t.Fatalf("%q: fast path decoded %+v, strict decoder %+v", p, fast, slow)
	}
}

// checkBodyFastPath: for each message with a fast decoder, when it accepts
// body the strict decoder decodes the same.
func checkBodyFastPath(t *testing.T, body []byte) {
	t.Helper()
	for _, mk := range []func() any{
		func() any { return new(RunResult) }, func() any { return new(RunAck) },
		func() any { return new(RunStarted) }, func() any { return new(RunRequest) },
	} {
		fast, slow := mk(), mk()
		if !decodeBody(body, fast) {
			continue
		}
		if err := strictUnmarshal(body, slow); err != nil {
			t.Fatalf("fast path accepted %q as %T, strict decoder refused it: %v", body, fast, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path decoded %+v, strict decoder %+v", body, fast, slow)
		}
	}
}

func TestRunMessagesRoundTrip(t *testing.T) {
	for _, m := range runSeeds() {
		env, err := NewEnvelope(m.typ, "7", m.body)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := AppendControl(nil, env)
		if err != nil {
			t.Fatal(err)
		}
		f, err := DecodeFrame(msg)
		if err != nil {
			t.Fatal(err)
		}
		checkEnvelopeFastPath(t, f.Payload)
		got, ok := decodeEnvelope(f.Payload)
		if !ok || got.Type != m.typ || got.ID != "7" {
			t.Fatalf("%s: envelope not taken by the fast path (%v) or wrong: %+v", m.typ, ok, got)
		}
		checkBodyFastPath(t, got.Body)
		want := reflect.New(reflect.Indirect(reflect.ValueOf(m.body)).Type())
		if !decodeBody(got.Body, want.Interface()) {
			t.Fatalf("%s: body %s not taken by the fast path", m.typ, got.Body)
		}
		checkEncoders(t, string(got.Body))
	}
}

func TestFastPathGivesUp(t *testing.T) {
	// Each is something the fast path leaves to encoding/json: a null, a key
	// in another case, an escaped key, a repeated key, a fraction, trailing
	// data, an unknown key. DecodeBody must still accept or refuse it as
	// the strict decoder does.
	const id = `"0193a1b2-0000-7000-8000-000000000001"`
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{`{"run_id":null}`, false},                   // strict: run_id stays empty, Validate refuses
		{`{"RUN_ID":` + id + `}`, true},              // encoding/json matches keys case-insensitively
		{`{"run\u005fid":` + id + `}`, true},         // escaped key
		{`{"run_id":"x","run_id":` + id + `}`, true}, // last one wins
		{`{"run_id":` + id + `,"x":1}`, false},       // unknown field
		{`{"run_id":` + id + `} x`, false},           // trailing data
		{`{"run_id":` + id + `}}`, true},             // what json.Decoder.More lets through
	} {
		var ack RunAck
		err := DecodeBody(Envelope{Type: MsgRunAck, Body: json.RawMessage(tt.body)}, &ack)
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok=%v", tt.body, err, tt.ok)
		}
		checkBodyFastPath(t, []byte(tt.body))
	}
	var rr RunRequest
	if decodeBody([]byte(`{"plugin":{"size":1.5}}`), &rr) || decodeBody([]byte(`{"plugin":{"size":99999999999999999999}}`), &rr) {
		t.Error("fast path took a number that is not an int64")
	}
}

func BenchmarkRunResultDecode(b *testing.B) {
	env, _ := NewEnvelope(MsgRunResult, "", runSeeds()[2].body)
	msg, _ := AppendControl(nil, env)
	b.ReportAllocs()
	for b.Loop() {
		f, _ := DecodeFrame(msg)
		env, err := DecodeEnvelope(f.Payload)
		if err != nil {
			b.Fatal(err)
		}
		var r RunResult
		if err := DecodeBody(env, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunRequestEncode(b *testing.B) {
	body := runSeeds()[0].body
	b.ReportAllocs()
	for b.Loop() {
		env, _ := NewEnvelope(MsgRun, "", body)
		if _, err := AppendControl(nil, env); err != nil {
			b.Fatal(err)
		}
	}
}

// The frame NewEnvelope writes is used only while the envelope's fields are
// still those it was written with.
func TestEnvelopeFrameFollowsChanges(t *testing.T) {
	env, err := NewEnvelope(MsgRunAck, "1", RunAck{RunID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(e *Envelope){
		func(e *Envelope) {},
		func(e *Envelope) { e.ID = "2" },
		func(e *Envelope) { e.Type = MsgRunCancel },
		func(e *Envelope) { e.Body = json.RawMessage(`{"run_id":"b"}`) },
		func(e *Envelope) { e.Body = e.Body[: len(e.Body)-1 : len(e.Body)-1]; e.Body = append(e.Body, ']') },
	} {
		e := env
		change(&e)
		got, gotErr := AppendControl([]byte("x"), e)
		e.frame, e.made = nil, nil
		want, wantErr := AppendControl([]byte("x"), e)
		if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("frame %q (%v), want %q (%v)", got, gotErr, want, wantErr)
		}
	}
	a, _ := AppendControl(nil, env)
	b, _ := AppendControl(nil, env)
	_ = append(a, 'x')
	if bytes.HasSuffix(b, []byte("x")) || cap(a) != len(a) {
		t.Fatal("the shared frame can be appended to in place")
	}
}
