package wire

import (
	"encoding/base64"
	"slices"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

// The fast path's messages (see fastjson.go). Each encoder writes what
// json.Marshal writes for the type (field order, omitempty, escaping); each
// decoder reads what strictUnmarshal reads, or reports ok=false.

// appendBody appends the JSON of a message that has a fast encoder; ok is
// false for other types, and when a time cannot be encoded (json.Marshal
// then reports the error).
func appendBody(b []byte, body any) ([]byte, bool) {
	switch m := body.(type) {
	case RunRequest:
		return m.appendJSON(b)
	case *RunRequest:
		return m.appendJSON(b)
	case RunAck:
		return m.appendJSON(b), true
	case *RunAck:
		return m.appendJSON(b), true
	case RunResult:
		return m.appendJSON(b)
	case *RunResult:
		return m.appendJSON(b)
	case RunStarted:
		return m.appendJSON(b)
	case *RunStarted:
		return m.appendJSON(b)
	}
	return nil, false
}

// bodySize estimates the JSON size of a message that has a fast encoder;
// ok is false for other types.
func bodySize(body any) (int, bool) {
	switch m := body.(type) {
	case RunRequest:
		return m.size(), true
	case *RunRequest:
		return m.size(), true
	case RunAck:
		return 16 + len(m.RunID), true
	case *RunAck:
		return 16 + len(m.RunID), true
	case RunResult:
		return m.size(), true
	case *RunResult:
		return m.size(), true
	case RunStarted:
		return 64 + len(m.RunID), true
	case *RunStarted:
		return 64 + len(m.RunID), true
	}
	return 0, false
}

func (r *RunRequest) size() int {
	n := 200 + len(r.RunID) + len(r.JobID) + len(r.Plugin.Name) + len(r.Plugin.Version) + len(r.Plugin.SHA256) + len(r.Requester) + len(r.Reason)
	if r.Reboot != nil {
		n += 80 + len(r.Reboot.Mode)
	}
	if r.Script != nil {
		n += 80 + len(r.Script.Name) + len(r.Script.Version) + len(r.Script.SHA256)
	}
	for k, v := range r.Params {
		n += 6 + len(k) + len(v)
	}
	return n
}

func (r *RunResult) size() int {
	n := 200 + len(r.RunID) + len(r.State) + len(r.Summary) + len(r.Error) + len(r.Details) + len(r.Output) +
		len(r.Signer) + len(r.Version)
	if c := r.Consent; c != nil {
		n += 120 + len(c.By) + len(c.Message) + len(c.Mode)
		if s := c.Receipt; s != nil {
			n += 60 + base64.StdEncoding.EncodedLen(len(s.Receipt)+len(s.Signature)+len(s.Cert)+6)
		}
	}
	return n
}

// decodeBody decodes body into v when v is a message with a fast decoder;
// ok is false when it is not, or when the fast decoder gave up (v is then
// unchanged).
func decodeBody(body []byte, v any) bool {
	switch m := v.(type) {
	case *RunResult:
		return m.decodeJSON(body)
	case *RunAck:
		return m.decodeJSON(body)
	case *RunStarted:
		return m.decodeJSON(body)
	case *RunRequest:
		return m.decodeJSON(body)
	}
	return false
}

func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b) // what Time.MarshalJSON writes between its quotes
	if err != nil {
		return nil, false
	}
	return append(b, '"'), true
}

// appendJSON appends the envelope as json.Marshal would. Body must be
// compact JSON (as NewEnvelope makes it).
func (env Envelope) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, env.Type)
	if env.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, env.ID)
	}
	if len(env.Body) > 0 {
		b = append(b, `,"body":`...)
		b = append(b, env.Body...)
	}
	return append(b, '}')
}

// decodeEnvelope is DecodeEnvelope's fast path.
func decodeEnvelope(p []byte) (Envelope, bool) {
	var env Envelope
	var seen uint8
	l := lexer{b: p}
	if !l.next('{') {
		return Envelope{}, false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			break
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "type":
			if ok = once(&seen, 1); ok {
				env.Type, ok = l.str()
			}
		case string(key) == "id":
			if ok = once(&seen, 2); ok {
				env.ID, ok = l.str()
			}
		case string(key) == "body":
			l.ws()
			start := l.i
			if ok = once(&seen, 4) && !hasPrefixAt(p, start, "null") && l.skip(); ok {
				env.Body = slices.Clone(p[start:l.i])
			}
		default:
			ok = false
		}
		if !ok {
			return Envelope{}, false
		}
	}
	return env, l.end()
}

// once records bit in seen and reports whether it was not there yet: a
// repeated key takes the slow path.
func once[T uint8 | uint16](seen *T, bit T) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

func (r *RunAck) appendJSON(b []byte) []byte {
	b = append(b, `{"run_id":`...)
	b = appendString(b, r.RunID)
	return append(b, '}')
}

func (r *RunAck) decodeJSON(body []byte) bool {
	x := *r
	var seen uint8
	l := lexer{b: body}
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			break
		}
		if st != memberKey || string(key) != "run_id" || !once(&seen, 1) {
			return false
		}
		var ok bool
		if x.RunID, ok = l.str(); !ok {
			return false
		}
	}
	if !l.end() {
		return false
	}
	*r = x
	return true
}

func (r *RunStarted) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"run_id":`...)
	b = appendString(b, r.RunID)
	b = append(b, `,"started":`...)
	b, ok := appendTime(b, r.Started)
	return append(b, '}'), ok
}

func (r *RunStarted) decodeJSON(body []byte) bool {
	x := *r
	var seen uint8
	l := lexer{b: body}
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			break
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "run_id":
			if ok = once(&seen, 1); ok {
				x.RunID, ok = l.str()
			}
		case string(key) == "started":
			ok = once(&seen, 2) && l.time(&x.Started)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	if !l.end() {
		return false
	}
	*r = x
	return true
}

// time reads a string into t through Time.UnmarshalJSON, as encoding/json
// does.
func (l *lexer) time(t *time.Time) bool {
	raw, ok := l.rawStr()
	return ok && t.UnmarshalJSON(raw) == nil
}

func (r *RunResult) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"run_id":`...)
	b = appendString(b, r.RunID)
	b = append(b, `,"state":`...)
	b = appendString(b, r.State)
	b = append(b, `,"needed":`...)
	b = appendBool(b, r.Needed)
	if r.Changed {
		b = append(b, `,"changed":true`...)
	}
	if r.RebootRequired {
		b = append(b, `,"reboot_required":true`...)
	}
	for _, f := range [...]struct{ key, v string }{
		{`,"summary":`, r.Summary}, {`,"error":`, r.Error}, {`,"details":`, r.Details},
		{`,"output":`, r.Output}, {`,"signer":`, r.Signer}, {`,"version":`, r.Version},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendString(b, f.v)
		}
	}
	ok := true
	if r.Consent != nil {
		b = append(b, `,"consent":`...)
		if b, ok = r.Consent.appendJSON(b); !ok {
			return nil, false
		}
	}
	b = append(b, `,"started":`...)
	b, ok = appendTime(b, r.Started)
	if !ok {
		return nil, false
	}
	b = append(b, `,"ended":`...)
	b, ok = appendTime(b, r.Ended)
	return append(b, '}'), ok
}

func (r *RunResult) decodeJSON(body []byte) bool {
	x := *r
	var seen uint16
	l := lexer{b: body}
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			break
		}
		if st != memberKey {
			return false
		}
		var s *string
		var bl *bool
		var t *time.Time
		var bit uint16
		switch string(key) {
		case "run_id":
			s, bit = &x.RunID, 1<<0
		case "state":
			s, bit = &x.State, 1<<1
		case "needed":
			bl, bit = &x.Needed, 1<<2
		case "changed":
			bl, bit = &x.Changed, 1<<3
		case "reboot_required":
			bl, bit = &x.RebootRequired, 1<<4
		case "summary":
			s, bit = &x.Summary, 1<<5
		case "error":
			s, bit = &x.Error, 1<<6
		case "details":
			s, bit = &x.Details, 1<<7
		case "output":
			s, bit = &x.Output, 1<<8
		case "signer":
			s, bit = &x.Signer, 1<<9
		case "version":
			s, bit = &x.Version, 1<<10
		case "started":
			t, bit = &x.Started, 1<<11
		case "ended":
			t, bit = &x.Ended, 1<<12
		case "consent":
			if !once(&seen, 1<<13) {
				return false
			}
			c := new(RunConsent)
			if x.Consent != nil {
				*c = *x.Consent // encoding/json decodes into the struct already there
			}
			if !c.decodeJSON(&l) {
				return false
			}
			x.Consent = c
			continue
		default:
			return false
		}
		if !once(&seen, bit) {
			return false
		}
		var ok bool
		switch {
		case s != nil:
			*s, ok = l.str()
		case bl != nil:
			*bl, ok = l.boolean()
		default:
			ok = l.time(t)
		}
		if !ok {
			return false
		}
	}
	if !l.end() {
		return false
	}
	*r = x
	return true
}

func (c *RunConsent) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"approved":`...)
	b = appendBool(b, c.Approved)
	b = append(b, `,"by":`...)
	b = appendString(b, c.By)
	for _, f := range [...]struct{ key, v string }{{`,"message":`, c.Message}, {`,"mode":`, c.Mode}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendString(b, f.v)
		}
	}
	if s := c.Receipt; s != nil {
		b = append(b, `,"receipt":{"receipt":`...)
		b = appendBytes(b, s.Receipt)
		b = append(b, `,"signature":`...)
		b = appendBytes(b, s.Signature)
		b = append(b, `,"cert":`...)
		b = appendBytes(b, s.Cert)
		b = append(b, '}')
	}
	b = append(b, `,"at":`...)
	b, ok := appendTime(b, c.At)
	return append(b, '}'), ok
}

// decodeJSON reads a consent object into c (which may hold values already,
// as encoding/json leaves them for keys the object lacks).
func (c *RunConsent) decodeJSON(l *lexer) bool {
	var seen uint8
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			return true
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "approved":
			if ok = once(&seen, 1); ok {
				c.Approved, ok = l.boolean()
			}
		case string(key) == "by":
			if ok = once(&seen, 2); ok {
				c.By, ok = l.str()
			}
		case string(key) == "message":
			if ok = once(&seen, 4); ok {
				c.Message, ok = l.str()
			}
		case string(key) == "mode":
			if ok = once(&seen, 8); ok {
				c.Mode, ok = l.str()
			}
		case string(key) == "receipt":
			if ok = once(&seen, 16); ok {
				r := new(receipt.Signed)
				if c.Receipt != nil {
					*r = *c.Receipt // encoding/json decodes into the struct already there
				}
				if ok = decodeSigned(l, r); ok {
					c.Receipt = r
				}
			}
		case string(key) == "at":
			ok = once(&seen, 32) && l.time(&c.At)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
}

// appendBytes appends b as json.Marshal writes a []byte: standard base64
// in a string, or null for nil.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// bytes reads a base64 string into *v as encoding/json reads a []byte; a
// null (or anything else) gives up.
func (l *lexer) bytes(v *[]byte) bool {
	s, ok := l.str()
	if !ok {
		return false
	}
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return false
	}
	*v = out
	return true
}

// decodeSigned reads a signed receipt object into s.
func decodeSigned(l *lexer, s *receipt.Signed) bool {
	var seen uint8
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			return true
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "receipt":
			ok = once(&seen, 1) && l.bytes(&s.Receipt)
		case string(key) == "signature":
			ok = once(&seen, 2) && l.bytes(&s.Signature)
		case string(key) == "cert":
			ok = once(&seen, 4) && l.bytes(&s.Cert)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
}

func (a *ArtifactRef) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, a.Name)
	b = append(b, `,"version":`...)
	b = appendString(b, a.Version)
	b = append(b, `,"sha256":`...)
	b = appendString(b, a.SHA256)
	b = append(b, `,"size":`...)
	b = appendInt(b, a.Size)
	return append(b, '}')
}

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		if n == -1<<63 {
			return append(b, "9223372036854775808"...)
		}
		n = -n
	}
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

func (a *ArtifactRef) decodeJSON(l *lexer) bool {
	var seen uint8
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			return true
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "name":
			if ok = once(&seen, 1); ok {
				a.Name, ok = l.str()
			}
		case string(key) == "version":
			if ok = once(&seen, 2); ok {
				a.Version, ok = l.str()
			}
		case string(key) == "sha256":
			if ok = once(&seen, 4); ok {
				a.SHA256, ok = l.str()
			}
		case string(key) == "size":
			if ok = once(&seen, 8); ok {
				a.Size, ok = l.int64()
			}
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
}

func (r *RunRequest) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"run_id":`...)
	b = appendString(b, r.RunID)
	b = append(b, `,"job_id":`...)
	b = appendString(b, r.JobID)
	b = append(b, `,"plugin":`...)
	b = r.Plugin.appendJSON(b)
	if r.Script != nil {
		b = append(b, `,"script":`...)
		b = r.Script.appendJSON(b)
	}
	if len(r.Params) > 0 {
		b = append(b, `,"params":{`...)
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys) // json.Marshal sorts map keys
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Params[k])
		}
		b = append(b, '}')
	}
	if r.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	b = append(b, `,"timeout":`...)
	b = appendString(b, time.Duration(r.Timeout).String())
	if r.AllowDowngrade {
		b = append(b, `,"allow_downgrade":true`...)
	}
	b = append(b, `,"requester":`...)
	b = appendString(b, r.Requester)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	if rb := r.Reboot; rb != nil {
		b = append(b, `,"reboot":{"mode":`...)
		b = appendString(b, rb.Mode)
		if !rb.WindowEnd.IsZero() {
			b = append(b, `,"window_end":`...)
			var ok bool
			if b, ok = appendTime(b, rb.WindowEnd); !ok {
				return nil, false
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func (r *RunRequest) decodeJSON(body []byte) bool {
	x := *r
	var seen uint16
	l := lexer{b: body}
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			break
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "run_id":
			if ok = once(&seen, 1<<0); ok {
				x.RunID, ok = l.str()
			}
		case string(key) == "job_id":
			if ok = once(&seen, 1<<1); ok {
				x.JobID, ok = l.str()
			}
		case string(key) == "plugin":
			ok = once(&seen, 1<<2) && x.Plugin.decodeJSON(&l)
		case string(key) == "script":
			if ok = once(&seen, 1<<3); ok {
				s := new(ArtifactRef)
				if x.Script != nil {
					*s = *x.Script // encoding/json decodes into the struct already there
				}
				if ok = s.decodeJSON(&l); ok {
					x.Script = s
				}
			}
		case string(key) == "params":
			ok = once(&seen, 1<<4) && l.params(&x.Params)
		case string(key) == "dry_run":
			if ok = once(&seen, 1<<5); ok {
				x.DryRun, ok = l.boolean()
			}
		case string(key) == "timeout":
			if ok = once(&seen, 1<<6); ok {
				raw, rok := l.rawStr()
				ok = rok && x.Timeout.UnmarshalJSON(raw) == nil
			}
		case string(key) == "allow_downgrade":
			if ok = once(&seen, 1<<7); ok {
				x.AllowDowngrade, ok = l.boolean()
			}
		case string(key) == "requester":
			if ok = once(&seen, 1<<8); ok {
				x.Requester, ok = l.str()
			}
		case string(key) == "reason":
			if ok = once(&seen, 1<<9); ok {
				x.Reason, ok = l.str()
			}
		case string(key) == "reboot":
			if ok = once(&seen, 1<<10); ok {
				rb := new(RunReboot)
				if x.Reboot != nil {
					*rb = *x.Reboot // encoding/json decodes into the struct already there
				}
				if ok = rb.decodeJSON(&l); ok {
					x.Reboot = rb
				}
			}
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
	if !l.end() {
		return false
	}
	*r = x
	return true
}

// decodeJSON reads a RunReboot object (null and other shapes: false).
func (r *RunReboot) decodeJSON(l *lexer) bool {
	var seen uint8
	if !l.next('{') {
		return false
	}
	for first := true; ; first = false {
		key, st := l.member(first)
		if st == memberEnd {
			return true
		}
		ok := st == memberKey
		switch {
		case !ok:
		case string(key) == "mode":
			if ok = once(&seen, 1); ok {
				r.Mode, ok = l.str()
			}
		case string(key) == "window_end":
			ok = once(&seen, 2) && l.time(&r.WindowEnd)
		default:
			ok = false
		}
		if !ok {
			return false
		}
	}
}

// params reads an object of strings into a map as encoding/json does: into
// a new map when *m is nil, else into *m (through a copy, so that giving up
// leaves the caller's map as it was). A repeated key keeps its last value.
func (l *lexer) params(m *map[string]string) bool {
	if !l.next('{') {
		return false
	}
	out := make(map[string]string, len(*m))
	for k, v := range *m {
		out[k] = v
	}
	if !l.next('}') {
		for {
			k, ok := l.str()
			if !ok || !l.next(':') {
				return false
			}
			if out[k], ok = l.str(); !ok {
				return false
			}
			if l.next(',') {
				continue
			}
			if !l.next('}') {
				return false
			}
			break
		}
	}
	*m = out
	return true
}
