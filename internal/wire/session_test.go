package wire

import (
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

func TestSessionPendingAndReceiptLimits(t *testing.T) {
	const id = "0193a1b2-0000-7000-8000-000000000001"
	decode := func(typ string, body any, v any) error {
		env, err := NewEnvelope(typ, "", body)
		if err != nil {
			t.Fatal(err)
		}
		return DecodeBody(env, v)
	}
	var p SessionPending
	ok := SessionPending{SessionID: id, Deadline: time.Now().Add(time.Minute), Asking: "the user at pc-042"}
	if err := decode(MsgSessionPending, ok, &p); err != nil || p.Asking != ok.Asking {
		t.Fatalf("valid session_pending: %v", err)
	}
	for name, bad := range map[string]any{
		"no deadline": SessionPending{SessionID: id},
		"bad id":      SessionPending{SessionID: "x", Deadline: time.Now()},
		"escape":      SessionPending{SessionID: id, Deadline: time.Now(), Asking: "\x1b[2J"},
		"long":        SessionPending{SessionID: id, Deadline: time.Now(), Asking: strings.Repeat("a", 129)},
		"unknown":     map[string]any{"session_id": id, "deadline": time.Now(), "x": 1},
	} {
		if err := decode(MsgSessionPending, bad, &p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	sig := func(n int) *receipt.Signed {
		return &receipt.Signed{Receipt: []byte(strings.Repeat("r", n)), Signature: []byte{1}, Cert: []byte{2}}
	}
	var a SessionAnswer
	if err := decode(MsgSessionAnswer, SessionAnswer{SessionID: id, Mode: "prompt", Receipt: sig(10)}, &a); err != nil || a.Receipt == nil {
		t.Fatalf("answer with receipt: %v", err)
	}
	if err := decode(MsgSessionAnswer, SessionAnswer{SessionID: id, Mode: "prompt", Receipt: sig(receipt.MaxSize + 1)}, &a); err == nil {
		t.Error("oversized receipt accepted")
	}
	if err := decode(MsgSessionAnswer, SessionAnswer{SessionID: id, Mode: "prompt", Receipt: &receipt.Signed{Receipt: []byte("x")}}, &a); err == nil {
		t.Error("receipt without a signature accepted")
	}
	var e SessionEnd
	if err := decode(MsgSessionEnd, SessionEnd{SessionID: id, By: "user", Receipt: &receipt.Signed{Receipt: []byte("x"), Signature: []byte{1}}}, &e); err == nil {
		t.Error("end receipt without a certificate accepted")
	}
}
