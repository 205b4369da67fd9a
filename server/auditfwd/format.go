package auditfwd

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/audit"
)

// The syslog message of one audit record (RFC 5424):
//
//	<109>1 2026-05-01T10:00:00.123456Z relay-1 patchbay 4242 session.approved
//	  [origin software="patchbay" swVersion="1.4.0"]
//	  [patchbay@32473 seq="12" action="session.approved" actor="agent 0190... (carol)"
//	   target="0190..." hash="9f86..." prev_hash="1c2d..."]
//	  [detail@32473 by="carol" mode="prompt" ...] BOM"agent 0190... (carol) session.approved 0190..."
//
// (one line; wrapped here). PRI 109 is facility 13 (log audit), severity 5
// (notice). MSGID is the action. The patchbay element carries what
// identifies the record in the chain: with seq, hash and prev_hash a
// receiver can check the chain itself, find duplicates (seq) and ask the
// relay for a record it doubts. The detail element carries the record's
// details, one parameter each. The free-text MSG is for people reading the
// receiver's files.
//
// 32473 is the private enterprise number RFC 5612 reserves for examples:
// Patchbay has none of its own, and an SD-ID with "@" needs one.
const (
	// Facility and Severity make PRI: log audit (13), notice (5).
	Facility = 13
	Severity = 5
	AppName  = "patchbay"
	// RecordID and DetailID are the SD-IDs of the record and its details.
	RecordID = "patchbay@32473"
	DetailID = "detail@32473"

	// DefaultMaxSize is the largest message sent: the size RFC 5425 says
	// receivers SHOULD accept (rsyslog's default limit too). A larger
	// record loses its MSG text, then has its longest values cut (marked
	// truncated="true"); the relay keeps the whole record.
	DefaultMaxSize = 8192
	// MinMaxSize is the size every receiver MUST accept (RFC 5424 6.1).
	MinMaxSize = 480

	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// Format describes where the messages come from.
type Format struct {
	Hostname string // this relay's name; "-" when empty
	ProcID   string // e.g. the process ID; "-" when empty
	Version  string // the relay's version, in the origin element; left out when empty
	MaxSize  int    // default DefaultMaxSize; at least MinMaxSize
}

// Message returns the RFC 5424 message of r, at most f.MaxSize bytes.
func (f Format) Message(r audit.Record) []byte {
	maxSize := f.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	maxSize = max(maxSize, MinMaxSize)
	msg := f.build(r, -1, true)
	if len(msg) <= maxSize {
		return msg
	}
	// Too large: drop the text, then cut values shorter and shorter.
	for limit := 4096; ; limit /= 2 {
		msg = f.build(r, limit, false)
		if len(msg) <= maxSize || limit == 0 {
			break
		}
	}
	if len(msg) > maxSize { // only when the details' names alone are too many
		msg = f.build(audit.Record{Seq: r.Seq, Time: r.Time, Action: r.Action, Actor: r.Actor, Target: r.Target, Hash: r.Hash, PrevHash: r.PrevHash,
			Detail: map[string]string{"omitted": strconv.Itoa(len(r.Detail)) + " details"}}, 16, false)
	}
	return msg
}

// Frame returns msg with RFC 5425 / RFC 6587 octet-counting framing:
// its length in decimal, a space, the message.
func Frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+8)
	out = strconv.AppendInt(out, int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}

// build writes the message; limit >= 0 cuts action, actor, target and
// detail values to limit bytes (marking the record truncated).
func (f Format) build(r audit.Record, limit int, text bool) []byte {
	cut := func(s string) string {
		if limit < 0 || len(s) <= limit {
			return s
		}
		return truncUTF8(s, limit)
	}
	var b strings.Builder
	b.WriteString("<" + strconv.Itoa(Facility*8+Severity) + ">1 ")
	b.WriteString(r.Time.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.999999Z07:00"))
	b.WriteByte(' ')
	b.WriteString(headerField(f.Hostname, maxHostname))
	b.WriteByte(' ')
	b.WriteString(AppName)
	b.WriteByte(' ')
	b.WriteString(headerField(f.ProcID, maxProcID))
	b.WriteByte(' ')
	b.WriteString(headerField(r.Action, maxMsgID))
	b.WriteString(" [origin software=\"" + AppName + "\"")
	if f.Version != "" {
		writeParam(&b, "swVersion", f.Version)
	}
	b.WriteString("][" + RecordID)
	writeParam(&b, "seq", strconv.FormatInt(r.Seq, 10))
	writeParam(&b, "action", cut(r.Action))
	writeParam(&b, "actor", cut(r.Actor))
	writeParam(&b, "target", cut(r.Target))
	writeParam(&b, "hash", r.Hash)
	writeParam(&b, "prev_hash", r.PrevHash)
	if limit >= 0 {
		writeParam(&b, "truncated", "true")
	}
	b.WriteByte(']')
	if len(r.Detail) > 0 {
		b.WriteString("[" + DetailID)
		keys := make([]string, 0, len(r.Detail))
		for k := range r.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			writeParam(&b, ParamName(k), cut(r.Detail[k]))
		}
		b.WriteByte(']')
	}
	if text {
		b.WriteString(" \uFEFF")
		b.WriteString(strings.ToValidUTF8(r.Actor+" "+r.Action+" "+r.Target, "\uFFFD"))
	}
	return []byte(b.String())
}

// writeParam writes ` name="value"` with value escaped.
func writeParam(b *strings.Builder, name, value string) {
	b.WriteString(" " + name + "=\"")
	b.WriteString(EscapeParamValue(value))
	b.WriteByte('"')
}

// EscapeParamValue escapes an SD-PARAM value (RFC 5424 6.3.3): '"', '\'
// and ']' get a backslash. Invalid UTF-8 becomes U+FFFD (PARAM-VALUE is
// UTF-8); the store already keeps records valid.
func EscapeParamValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, `"\]`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParamName makes a detail key a valid PARAM-NAME (RFC 5424 6.3.3): 1 to
// 32 printable US-ASCII characters but '=', ' ', ']' and '"'. Others
// become '_'; a longer name is cut; an empty one is "_". Detail keys are
// short snake_case names, which pass unchanged.
func ParamName(k string) string {
	b := []byte(k)
	if len(b) > maxSDName {
		b = b[:maxSDName]
	}
	for i, c := range b {
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// headerField makes s a header field (HOSTNAME, PROCID, MSGID): printable
// US-ASCII, others replaced by '_', at most n bytes, "-" (NILVALUE) when
// empty.
func headerField(s string, n int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	if len(b) > n {
		b = b[:n]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}

// truncUTF8 cuts s to at most n bytes without splitting a character.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
