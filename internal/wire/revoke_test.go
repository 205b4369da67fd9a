package wire

import (
	"strings"
	"testing"
	"time"
)

func TestSSHRevokedRoundTripAndBounds(t *testing.T) {
	vb := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	// The largest serial survives the trip exactly (a JSON number would not
	// in every language: it travels as a string).
	in := SSHRevoked{Certs: []RevokedCert{{Serial: 1<<64 - 1, KeyID: "alice", ValidBefore: vb}, {Serial: 0, KeyID: "bob@example.com", ValidBefore: vb}}}
	env, err := NewEnvelope(MsgSSHRevoked, "", in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env.Body), `"serial":"18446744073709551615"`) {
		t.Errorf("serial not sent as a decimal string: %s", env.Body)
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
	var out SSHRevoked
	if err := DecodeBody(got, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Certs) != 2 || out.Certs[0].Serial != 1<<64-1 || out.Certs[1].KeyID != "bob@example.com" || !out.Certs[0].ValidBefore.Equal(vb) {
		t.Fatalf("decoded %+v", out)
	}

	// The largest message the relay sends fits in one control frame.
	full := SSHRevoked{Certs: make([]RevokedCert, MaxRevokedCerts)}
	for i := range full.Certs {
		full.Certs[i] = RevokedCert{Serial: 1<<64 - 1 - uint64(i), KeyID: strings.Repeat("k", MaxTechnicianLen), ValidBefore: vb}
	}
	env, err = NewEnvelope(MsgSSHRevoked, "", full)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendControl(nil, env); err != nil {
		t.Fatalf("a full ssh_revoked message does not fit in a frame: %v", err)
	}
	var back SSHRevoked
	if err := DecodeBody(env, &back); err != nil || len(back.Certs) != MaxRevokedCerts {
		t.Fatalf("full message: %v, %d certificates", err, len(back.Certs))
	}

	for _, tc := range []struct {
		name, body, want string
	}{
		{"empty", `{"certs":[]}`, "no certificates"},
		{"null", `{"certs":null}`, "no certificates"},
		{"serial number", `{"certs":[{"serial":5,"key_id":"a","valid_before":"2026-01-02T03:04:05Z"}]}`, "unquoted value"},
		{"serial negative", `{"certs":[{"serial":"-1","key_id":"a","valid_before":"2026-01-02T03:04:05Z"}]}`, "serial"},
		{"serial too big", `{"certs":[{"serial":"18446744073709551616","key_id":"a","valid_before":"2026-01-02T03:04:05Z"}]}`, "serial"},
		{"bad key id", `{"certs":[{"serial":"1","key_id":"a b","valid_before":"2026-01-02T03:04:05Z"}]}`, "key_id"},
		{"long key id", `{"certs":[{"serial":"1","key_id":"` + strings.Repeat("a", MaxTechnicianLen+1) + `","valid_before":"2026-01-02T03:04:05Z"}]}`, "key_id"},
		{"no expiry", `{"certs":[{"serial":"1","key_id":"a"}]}`, "valid_before"},
		{"unknown field", `{"certs":[{"serial":"1","key_id":"a","valid_before":"2026-01-02T03:04:05Z","x":1}]}`, "unknown field"},
	} {
		var m SSHRevoked
		err := DecodeBody(Envelope{Type: MsgSSHRevoked, Body: []byte(tc.body)}, &m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	tooMany := SSHRevoked{Certs: make([]RevokedCert, MaxRevokedCerts+1)}
	for i := range tooMany.Certs {
		tooMany.Certs[i] = RevokedCert{Serial: uint64(i), KeyID: "a", ValidBefore: vb}
	}
	if err := tooMany.Validate(); err == nil || !strings.Contains(err.Error(), "at most 4096") {
		t.Errorf("%d certificates: %v", len(tooMany.Certs), err)
	}
}

func TestSplitRevoked(t *testing.T) {
	certs := make([]RevokedCert, 2*MaxRevokedCerts+1)
	parts := SplitRevoked(certs)
	if len(parts) != 3 || len(parts[0].Certs) != MaxRevokedCerts || len(parts[2].Certs) != 1 {
		t.Fatalf("split %d into %d parts", len(certs), len(parts))
	}
	if SplitRevoked(nil) != nil {
		t.Error("nothing to send gave messages")
	}
}
