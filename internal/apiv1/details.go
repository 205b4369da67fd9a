package apiv1

import (
	"bytes"
	"encoding/json"
	"strings"
)

// RunDetails is what a plugin reported beyond its summary, as a JSON object
// (the "details" of a RunResult):
//
//	{"data": {...}}        the plugin reported JSON (an object or an array)
//	{"text": "..."}        it reported free text (lines)
//	{"restart": "..."}     what the endpoint decided about a restart the fix
//	                       required ("restart: tonight at 22:00, chosen by bob",
//	                       "restart pending: policy never"), next to either
//
// A run without details has none ("details" is left out). Relays before
// this type sent the details as one string; UnmarshalJSON still reads that,
// so a newer CLI or console works against an older relay.
type RunDetails struct {
	Data    json.RawMessage `json:"data,omitempty"`
	Text    string          `json:"text,omitempty"`
	Restart string          `json:"restart,omitempty"`
}

// IsZero reports whether there are no details.
func (d *RunDetails) IsZero() bool {
	return d == nil || len(d.Data) == 0 && d.Text == "" && d.Restart == ""
}

// ParseDetails splits the details an agent stored: the restart decision
// the agent appends as the last line (when restart is set, or always when
// reading an older relay's string), then JSON or text. Nil when empty.
func ParseDetails(s string, restart bool) *RunDetails {
	s = strings.TrimRight(s, "\r\n")
	if s == "" {
		return nil
	}
	var d RunDetails
	if restart {
		last := s[strings.LastIndexByte(s, '\n')+1:]
		if strings.HasPrefix(last, "restart") {
			d.Restart = last
			s = strings.TrimRight(s[:len(s)-len(last)], "\r\n")
		}
	}
	if t := strings.TrimSpace(s); t != "" && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(t)) == nil {
			d.Data = buf.Bytes()
		}
	} else {
		d.Text = s
	}
	if d.IsZero() {
		return nil
	}
	return &d
}

// UnmarshalJSON reads the object, or the string an older relay sent.
func (d *RunDetails) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if p := ParseDetails(s, true); p != nil {
			*d = *p
		} else {
			*d = RunDetails{}
		}
		return nil
	}
	type plain RunDetails
	return json.Unmarshal(b, (*plain)(d))
}
