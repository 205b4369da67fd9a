package api

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/patchbay/patchbay/server/store"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
)

func TestCheckJSONText(t *testing.T) {
	tests := []struct {
		name, body, err string
	}{
		{"plain", `{"reason":"INC-1 printer"}`, ""},
		{"utf-8", `{"reason":"café ☕ 😀"}`, ""},
		{"escaped pair", `{"reason":"\ud83d\ude00"}`, ""},
		{"escaped bmp", `{"reason":"\u00e9\u2615"}`, ""},
		{"escaped backslash then u", `{"reason":"\\ud800"}`, ""},
		{"escaped quote", `{"reason":"a\"\ud800"}`, "lone UTF-16 surrogate \\ud800 at byte 14"},
		{"invalid byte", "{\"reason\":\"caf\xe9\"}", "not valid UTF-8 at byte 14"},
		{"truncated rune", "{\"reason\":\"\xf0\x9f\x98\"}", "not valid UTF-8 at byte 11"},
		{"lone high", `{"reason":"x\ud83dy"}`, "lone UTF-16 surrogate \\ud83d at byte 12"},
		{"lone low", `{"reason":"\ude00"}`, "lone UTF-16 surrogate \\ude00"},
		{"high then high", `{"reason":"\ud83d\ud83d"}`, "lone UTF-16 surrogate \\ud83d"},
		{"high at end", `{"reason":"\ud83d"}`, "lone UTF-16 surrogate"},
		{"surrogate outside a string is left to the decoder", `{"a":1}\ud800`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkJSONText([]byte(tt.body))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("checkJSONText(%q) = %v; want %q", tt.body, err, tt.err)
			}
		})
	}
}

// A job whose reason or parameters are not UTF-8 is refused with 400 and
// creates nothing (encoding/json would have stored U+FFFD instead).
func TestJobTextMustBeUTF8(t *testing.T) {
	a, h, tok := testAPI(t)
	for _, body := range []string{
		"{\"plugin\":\"cacheclear\",\"target\":\"all\",\"reason\":\"caf\xe9\"}",
		`{"plugin":"cacheclear","target":"all","reason":"ok","params":{"path":"\udc00"}}`,
	} {
		rec := do(h, "POST", "/v1/jobs", tok[apiv1.RoleAdmin], body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "UTF") {
			t.Fatalf("POST /v1/jobs %q = %d %s; want 400 naming UTF-8", body, rec.Code, rec.Body)
		}
	}
	jobs, err := a.Store.ListJobs(context.Background(), store.Scope{All: true}, 10)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("jobs after refusals: %d (%v); want none", len(jobs), err)
	}
}

// FuzzCheckJSONText: never panics, and a body it passes never decodes to a
// replacement character that was not sent.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud83d\ude00"}`, `"\ud800"`, "\"\xff\"", `"\\ud800"`, `"\ufffd"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkJSONText(b) != nil {
			return
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		sent := bytes.Contains(b, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`))
		if !sent && strings.ContainsRune(dump(v), '\uFFFD') {
			t.Fatalf("passed %q, which decodes to U+FFFD", b)
		}
	})
}

// dump returns every string in v, keys included, joined.
func dump(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				b.WriteString(k)
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}
