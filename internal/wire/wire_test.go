package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

func TestDecodeFrame(t *testing.T) {
	hdr := func(tp Type, stream uint32, payload string) []byte {
		return append(AppendHeader(nil, tp, stream), payload...)
	}
	tests := []struct {
		name    string
		msg     []byte
		wantErr string
	}{
		{"control", hdr(TypeControl, 0, `{"type":"hello"}`), ""},
		{"open", hdr(TypeOpen, 3, "session"), ""},
		{"data", hdr(TypeData, 3, "x"), ""},
		{"window", append(AppendHeader(nil, TypeWindow, 3), WindowPayload(1024)...), ""},
		{"close", hdr(TypeClose, 3, ""), ""},
		{"reset", hdr(TypeReset, 3, "gone"), ""},
		{"short", []byte{1, 0, 0}, "shorter than"},
		{"empty", nil, "shorter than"},
		{"unknown type", hdr(Type(99), 1, ""), "unknown frame type 99"},
		{"control on stream", hdr(TypeControl, 1, "{}"), "control frame on stream 1"},
		{"data on control", hdr(TypeData, 0, "x"), "control stream"},
		{"empty control", hdr(TypeControl, 0, ""), "control payload of 0"},
		{"empty data", hdr(TypeData, 1, ""), "data payload of 0"},
		{"big data", hdr(TypeData, 1, strings.Repeat("x", MaxData+1)), "data payload"},
		{"bad kind", hdr(TypeOpen, 1, "Shell!"), "stream kind"},
		{"long kind", hdr(TypeOpen, 1, strings.Repeat("a", MaxKindLen+1)), "stream kind"},
		{"window zero", append(AppendHeader(nil, TypeWindow, 3), WindowPayload(0)...), "out of range"},
		{"window short", hdr(TypeWindow, 3, "ab"), "want 4"},
		{"close payload", hdr(TypeClose, 3, "x"), "close frame with"},
		{"reset not utf8", hdr(TypeReset, 3, "\xff"), "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFrame(tt.msg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeFrame: %v", err)
				}
				if got := f.Append(nil); !bytes.Equal(got, tt.msg) {
					t.Fatalf("re-encoded %x, want %x", got, tt.msg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeFrame error = %v, want one containing %q wrapping ErrMalformed", err, tt.wantErr)
			}
		})
	}
}

func validHello() Hello {
	return Hello{Proto: Proto, Inventory: Inventory{
		Hostname: "pc-042", OS: "linux", Arch: "amd64", Version: "0.1.0",
		Users: []string{"alice"}, IPs: []string{"10.0.0.5", "fe80::1"}, Tags: map[string]string{"site": "paris"},
	}}
}

func TestHelloRoundTrip(t *testing.T) {
	env, err := NewEnvelope(MsgHello, "", validHello())
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
	got, err := DecodeEnvelope(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var h Hello
	if err := DecodeBody(got, &h); err != nil {
		t.Fatal(err)
	}
	if h.Inventory.Hostname != "pc-042" || h.Inventory.Tags["site"] != "paris" {
		t.Fatalf("decoded %+v", h)
	}
}

func TestHelloValidation(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(h *Hello)
		wantErr string
	}{
		{"proto", func(h *Hello) { h.Proto = 7 }, "protocol 7"},
		{"no hostname", func(h *Hello) { h.Inventory.Hostname = "" }, "hostname"},
		{"control char", func(h *Hello) { h.Inventory.Hostname = "a\nb" }, "hostname"},
		{"os", func(h *Hello) { h.Inventory.OS = "linux; rm" }, "os and arch"},
		{"ip", func(h *Hello) { h.Inventory.IPs = []string{"999.1.1.1"} }, "ip"},
		{"tag key", func(h *Hello) { h.Inventory.Tags = map[string]string{"-x": "y"} }, "tag key"},
		{"tag value", func(h *Hello) { h.Inventory.Tags = map[string]string{"x": "a b"} }, "value"},
		{"users", func(h *Hello) { h.Inventory.Users = make([]string, MaxListLen+1) }, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validHello()
			tt.mutate(&h)
			env, _ := NewEnvelope(MsgHello, "", h)
			var got Hello
			err := DecodeBody(env, &got)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeEnvelopeStrict(t *testing.T) {
	for _, in := range []string{`{"type":"hello","extra":1}`, `{"type":""}`, `{"type":"x"} {}`, `[1]`, `nul`} {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("DecodeEnvelope(%s) accepted", in)
		}
	}
}

func TestWelcomeValidate(t *testing.T) {
	w := Welcome{Proto: Proto, AgentID: "x", Heartbeat: Duration(25 * time.Second)}
	env, _ := NewEnvelope(MsgWelcome, "", w)
	var got Welcome
	if err := DecodeBody(env, &got); err != nil || time.Duration(got.Heartbeat) != 25*time.Second {
		t.Fatalf("welcome: %v %+v", err, got)
	}
	w.Heartbeat = Duration(time.Millisecond)
	env, _ = NewEnvelope(MsgWelcome, "", w)
	if err := DecodeBody(env, &got); err == nil {
		t.Fatal("1ms heartbeat accepted")
	}
}

// FuzzDecode feeds arbitrary messages through every decoder an agent link
// uses on untrusted bytes. Nothing may panic, and a frame that decodes must
// re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	env, _ := NewEnvelope(MsgHello, "1", validHello())
	seed, _ := AppendControl(nil, env)
	f.Add(seed)
	f.Add(append(AppendHeader(nil, TypeWindow, 3), WindowPayload(9)...))
	f.Add(append(AppendHeader(nil, TypeOpen, 3), "session"...))
	f.Add([]byte{3, 0, 0, 0, 1, 'x'})
	for _, m := range []struct {
		typ  string
		body any
	}{
		{MsgSessionRequest, SessionRequest{SessionID: "0193a1b2-0000-7000-8000-000000000001", Technician: "alice", Reason: "INC-1", Capabilities: []string{CapShell}}},
		{MsgSessionAnswer, SessionAnswer{SessionID: "0193a1b2-0000-7000-8000-000000000001", Approved: true, Mode: "prompt", Capabilities: []string{CapExec}}},
		{MsgSessionEnd, SessionEnd{SessionID: "0193a1b2-0000-7000-8000-000000000001", By: "user", Reason: "done"}},
		{MsgSessionPending, SessionPending{SessionID: "0193a1b2-0000-7000-8000-000000000001", Deadline: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Asking: "the user at pc-042"}},
		{MsgSessionAnswer, SessionAnswer{SessionID: "0193a1b2-0000-7000-8000-000000000001", Mode: "prompt", Receipt: &receipt.Signed{Receipt: []byte(`{"v":1}`), Signature: []byte{1}, Cert: []byte{2}}}},
		{MsgSSHRevoked, SSHRevoked{Certs: []RevokedCert{{Serial: 1<<64 - 1, KeyID: "alice", ValidBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, {Serial: 7, KeyID: "bob", ValidBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}}},
	} {
		env, _ := NewEnvelope(m.typ, "", m.body)
		seed, _ := AppendControl(nil, env)
		f.Add(seed)
	}
	f.Add(append(AppendHeader(nil, TypeOpen, 4), "ssh.0193a1b2-0000-7000-8000-000000000001"...))
	for _, m := range runSeeds() {
		env, _ := NewEnvelope(m.typ, "7", m.body)
		seed, _ := AppendControl(nil, env)
		f.Add(seed)
	}
	f.Add(append(AppendHeader(nil, TypeControl, 0), ` {"body" : {"run_id":"a\u00e9\ud83d\ude00\ud800x","state":"failed","needed":false,"started":"2026-01-02T03:04:05.123+01:00","ended":"2026-01-02T03:04:05Z"} , "type":"run_result"}`...))
	f.Add(append(AppendHeader(nil, TypeControl, 0), `{"type":"run","body":{"run_id":"x","params":{"a\n":"1","a\n":"2"},"plugin":{"size":-0,"name":"n"},"timeout":"1m"}}}`...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkEncoders(t, string(msg))
		fr, err := DecodeFrame(msg)
		if err != nil {
			return
		}
		if !bytes.Equal(fr.Append(nil), msg) {
			t.Fatalf("re-encode mismatch")
		}
		if fr.Type != TypeControl {
			return
		}
		checkEnvelopeFastPath(t, fr.Payload)
		env, err := DecodeEnvelope(fr.Payload)
		if err != nil {
			return
		}
		checkBodyFastPath(t, env.Body)
		var h Hello
		_ = DecodeBody(env, &h)
		var w Welcome
		_ = DecodeBody(env, &w)
		var inv Inventory
		_ = DecodeBody(env, &inv)
		var rr RunRequest
		_ = DecodeBody(env, &rr)
		var res RunResult
		_ = DecodeBody(env, &res)
		var st RunStarted
		_ = DecodeBody(env, &st)
		var ack RunAck
		_ = DecodeBody(env, &ack)
		var sreq SessionRequest
		_ = DecodeBody(env, &sreq)
		var sans SessionAnswer
		_ = DecodeBody(env, &sans)
		var send SessionEnd
		_ = DecodeBody(env, &send)
		var spend SessionPending
		_ = DecodeBody(env, &spend)
		var rev SSHRevoked
		if DecodeBody(env, &rev) == nil && (len(rev.Certs) == 0 || len(rev.Certs) > MaxRevokedCerts) {
			t.Fatalf("ssh_revoked with %d certificates accepted", len(rev.Certs))
		}
		_, _, _ = ParseSessionStreamKind(string(fr.Payload))
	})
}

func TestSessionMessages(t *testing.T) {
	const id = "0193a1b2-0000-7000-8000-000000000001"
	tests := []struct {
		name string
		msg  interface{ Validate() error }
		want string // "" = valid
	}{
		{"request ok", &SessionRequest{SessionID: id, Technician: "alice", Reason: "INC-1 printer", Capabilities: []string{CapShell, CapSFTP}}, ""},
		{"request bad id", &SessionRequest{SessionID: "x", Technician: "alice", Capabilities: []string{CapShell}}, "not a UUID"},
		{"request bad technician", &SessionRequest{SessionID: id, Technician: "al ice", Capabilities: []string{CapShell}}, "technician"},
		{"request escape in reason", &SessionRequest{SessionID: id, Technician: "alice", Reason: "ok\x1b[2Jfake prompt", Capabilities: []string{CapShell}}, "control character"},
		{"request long reason", &SessionRequest{SessionID: id, Technician: "alice", Reason: strings.Repeat("x", MaxSessionReason+1), Capabilities: []string{CapShell}}, "limit"},
		{"request no caps", &SessionRequest{SessionID: id, Technician: "alice"}, "no capabilities"},
		{"request unknown cap", &SessionRequest{SessionID: id, Technician: "alice", Capabilities: []string{"root"}}, "unknown capability"},
		{"request repeated cap", &SessionRequest{SessionID: id, Technician: "alice", Capabilities: []string{CapExec, CapExec}}, "twice"},
		{"answer ok", &SessionAnswer{SessionID: id, Approved: true, Mode: "prompt", Capabilities: []string{CapShell}}, ""},
		{"answer denied without caps", &SessionAnswer{SessionID: id, Mode: "prompt", Message: "no"}, ""},
		{"answer bad mode", &SessionAnswer{SessionID: id, Mode: "yolo"}, "mode"},
		{"answer negative limit", &SessionAnswer{SessionID: id, Mode: "notify", IdleTimeout: -1}, "negative"},
		{"end ok", &SessionEnd{SessionID: id, By: "user", Reason: "done"}, ""},
		{"end bad id", &SessionEnd{SessionID: "../x"}, "not a UUID"},
	}
	for _, tt := range tests {
		err := tt.msg.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
	for kind, want := range map[string]string{"ssh." + id: "ssh", "rec." + id: "rec", "ssh.x": "", "job." + id: "", "ssh." + strings.ToUpper(id): ""} {
		what, gotID, ok := ParseSessionStreamKind(kind)
		if ok != (want != "") || what != want || (ok && gotID != id) {
			t.Errorf("ParseSessionStreamKind(%q) = %q %q %v", kind, what, gotID, ok)
		}
	}
}
