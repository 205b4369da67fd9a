package auditfwd_test

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/auditfwd"
	"github.com/patchbay/patchbay/server/auditfwd/syslogtest"
)

func record() audit.Record {
	r := audit.Record{Seq: 42, Time: time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("X", 7200)),
		Actor: `alice "the admin" (admin, api token 1a2b3c4d)`, Action: "session.approved", Target: `s-1 [x] \ y`,
		Detail:   map[string]string{"by": "carol", "message": `ok] "quoted" \n back\slash`, "naïve key=x": "ünïcödé ✓", "": "empty"},
		PrevHash: strings.Repeat("a", 64)}
	r.Hash = r.ComputeHash()
	return r
}

func mustParse(t *testing.T, msg []byte) syslogtest.Message {
	t.Helper()
	m, err := syslogtest.Parse(msg)
	if err != nil {
		t.Fatalf("strict parse: %v\n%s", err, msg)
	}
	return m
}

func TestMessage(t *testing.T) {
	r := record()
	f := auditfwd.Format{Hostname: "relay-1", ProcID: "4242", Version: "1.4.0"}
	msg := f.Message(r)
	m := mustParse(t, msg)
	if m.Pri != 109 || m.Hostname != "relay-1" || m.AppName != "patchbay" || m.ProcID != "4242" || m.MsgID != "session.approved" {
		t.Errorf("header: %+v", m)
	}
	if !m.Timestamp.Equal(r.Time.Truncate(time.Microsecond)) || !strings.Contains(string(msg), " 2026-05-01T08:00:00.123456Z ") {
		t.Errorf("timestamp %v in %s", m.Timestamp, msg)
	}
	origin, _ := m.Element("origin")
	if v, _ := origin.Get("software"); v != "patchbay" {
		t.Errorf("origin: %+v", origin)
	}
	if v, _ := origin.Get("swVersion"); v != "1.4.0" {
		t.Errorf("origin: %+v", origin)
	}
	rec, _ := m.Element(auditfwd.RecordID)
	want := map[string]string{"seq": "42", "action": r.Action, "actor": r.Actor, "target": r.Target, "hash": r.Hash, "prev_hash": r.PrevHash}
	for k, v := range want {
		if got, ok := rec.Get(k); !ok || got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := rec.Get("truncated"); ok {
		t.Error("a small record is marked truncated")
	}
	det, _ := m.Element(auditfwd.DetailID)
	wantDet := map[string]string{"by": "carol", "message": r.Detail["message"], "na__ve_key_x": "ünïcödé ✓", "_": "empty"}
	if len(det.Params) != len(wantDet) {
		t.Errorf("details: %+v", det.Params)
	}
	for k, v := range wantDet {
		if got, ok := det.Get(k); !ok || got != v {
			t.Errorf("detail %s = %q, want %q (%+v)", k, got, v, det.Params)
		}
	}
	if !m.HasBOM || m.Msg != r.Actor+" session.approved "+r.Target {
		t.Errorf("MSG %q (BOM %v)", m.Msg, m.HasBOM)
	}
	// The escapes themselves, as RFC 5424 6.3.3 writes them.
	if !strings.Contains(string(msg), `message="ok\] \"quoted\" \\n back\\slash"`) {
		t.Errorf("escapes: %s", msg)
	}
}

func TestHeaderLimits(t *testing.T) {
	r := record()
	r.Action = "a.very.long.action.name.that.goes.past.thirty.two"
	r.Detail = map[string]string{strings.Repeat("k", 40): "v"}
	f := auditfwd.Format{Hostname: "host with spaces\x7f" + strings.Repeat("h", 300)}
	m := mustParse(t, f.Message(r))
	if m.MsgID != r.Action[:32] || len(m.Hostname) != 255 || !strings.HasPrefix(m.Hostname, "host_with_spaces_") || m.ProcID != "-" {
		t.Errorf("header: %+v", m)
	}
	rec, _ := m.Element(auditfwd.RecordID)
	if a, _ := rec.Get("action"); a != r.Action {
		t.Errorf("the whole action is in the record element: %q", a)
	}
	det, _ := m.Element(auditfwd.DetailID)
	if v, ok := det.Get(strings.Repeat("k", 32)); !ok || v != "v" {
		t.Errorf("a long PARAM-NAME is cut to 32: %+v", det)
	}
	for _, tc := range []struct{ in, want string }{{"ok_name", "ok_name"}, {"a b", "a_b"}, {`q"]=`, "q___"}, {"", "_"}, {"é", "__"}} {
		if got := auditfwd.ParamName(tc.in); got != tc.want {
			t.Errorf("ParamName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := auditfwd.EscapeParamValue("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

func TestMessageSize(t *testing.T) {
	r := record()
	r.Detail = map[string]string{"receipt": strings.Repeat("é", 6000), "small": "x", "sig": strings.Repeat("]", 3000)}
	for _, size := range []int{0, 2048, 480, 100} {
		f := auditfwd.Format{Hostname: "relay-1", MaxSize: size}
		msg := f.Message(r)
		limit := size
		if size == 0 {
			limit = auditfwd.DefaultMaxSize
		}
		limit = max(limit, auditfwd.MinMaxSize)
		if len(msg) > limit {
			t.Errorf("max %d: %d bytes", size, len(msg))
		}
		m := mustParse(t, msg)
		rec, _ := m.Element(auditfwd.RecordID)
		if v, _ := rec.Get("truncated"); v != "true" {
			t.Errorf("max %d: not marked truncated", size)
		}
		if v, _ := rec.Get("hash"); v != r.Hash {
			t.Errorf("max %d: the hash is always whole: %q", size, v)
		}
		det, _ := m.Element(auditfwd.DetailID)
		for _, p := range det.Params {
			if !utf8.ValidString(p.Value) {
				t.Errorf("max %d: %s cut inside a character", size, p.Name)
			}
		}
	}
	// Many details: their names alone do not fit in the minimum size.
	r.Detail = map[string]string{}
	for i := range 100 {
		r.Detail["key_"+strconv.Itoa(i)] = "v"
	}
	msg := auditfwd.Format{MaxSize: 480}.Message(r)
	m := mustParse(t, msg)
	det, _ := m.Element(auditfwd.DetailID)
	if v, _ := det.Get("omitted"); len(msg) > 480 || v != "100 details" {
		t.Errorf("%d bytes: %s", len(msg), msg)
	}
}

func TestFrame(t *testing.T) {
	msg := auditfwd.Format{}.Message(record())
	var b bytes.Buffer
	b.Write(auditfwd.Frame(msg))
	b.Write(auditfwd.Frame(msg))
	br := bufio.NewReader(&b)
	for range 2 {
		got, err := syslogtest.ReadFrame(br)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("frame: %v %q", err, got)
		}
	}
	if !strings.HasPrefix(string(auditfwd.Frame(msg)), strconv.Itoa(len(msg))+" <109>1 ") {
		t.Errorf("frame %q", auditfwd.Frame(msg)[:20])
	}
}

// FuzzMessage: whatever a record holds, its message parses strictly, fits
// the size, and carries the record's values unchanged unless truncated.
func FuzzMessage(f *testing.F) {
	f.Add("alice", "session.approved", "s-1", "by", "carol", 0)
	f.Add(`a"\]`, "x y", "]]]", "k=]", `\\"`, 480)
	f.Add("\xff\xfe", "", "", "", "\x00\n", 600)
	f.Fuzz(func(t *testing.T, actor, action, target, key, value string, size int) {
		r := audit.Record{Seq: 7, Time: time.Unix(1e9, 5000), Actor: actor, Action: action, Target: target,
			Detail: map[string]string{key: value}, PrevHash: "p", Hash: "h"}
		size = size % 20000
		msg := auditfwd.Format{Hostname: "relay", MaxSize: size}.Message(r)
		limit := size
		if size <= 0 {
			limit = auditfwd.DefaultMaxSize
		}
		if len(msg) > max(limit, auditfwd.MinMaxSize) {
			t.Fatalf("%d bytes over %d", len(msg), limit)
		}
		m, err := syslogtest.Parse(msg)
		if err != nil {
			t.Fatalf("%v: %q", err, msg)
		}
		rec, _ := m.Element(auditfwd.RecordID)
		if _, cut := rec.Get("truncated"); cut {
			return
		}
		valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		det, _ := m.Element(auditfwd.DetailID)
		got, _ := det.Get(auditfwd.ParamName(key))
		a, _ := rec.Get("actor")
		if a != valid(actor) || got != valid(value) {
			t.Fatalf("round trip: actor %q -> %q, value %q -> %q", actor, a, value, got)
		}
	})
}
