// Package syslogtest is a small, strict syslog receiver for tests: it takes
// RFC 5425 / RFC 6587 octet-counted frames over TCP or TLS and parses each
// message by the letter of RFC 5424, refusing anything the RFC does not
// allow. It is the test's own receiver (a real listener, a real TLS
// handshake), not a stand-in for one of Patchbay's parts.
package syslogtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Param is one SD-PARAM, its value unescaped.
type Param struct{ Name, Value string }

// Element is one SD-ELEMENT.
type Element struct {
	ID     string
	Params []Param
}

// Get returns the value of the first parameter called name.
func (e Element) Get(name string) (string, bool) {
	for _, p := range e.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Message is one parsed RFC 5424 message. NILVALUE fields are "-".
type Message struct {
	Pri       int
	Timestamp time.Time // zero for NILVALUE
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	SD        []Element
	Msg       string // without the BOM
	HasBOM    bool
}

// Element returns the SD-ELEMENT with that SD-ID.
func (m Message) Element(id string) (Element, bool) {
	for _, e := range m.SD {
		if e.ID == id {
			return e, true
		}
	}
	return Element{}, false
}

// maxFrame bounds a frame's MSG-LEN (the largest the receiver takes).
const maxFrame = 64 << 10

// ReadFrame reads one octet-counted frame: MSG-LEN SP SYSLOG-MSG, where
// MSG-LEN is a decimal number without leading zeros (RFC 5425 4.3).
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	var n int
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("frame length: %w", noEOF(err))
		}
		switch {
		case c == ' ' && i > 0:
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return nil, fmt.Errorf("frame of %d bytes: %w", n, noEOF(err))
			}
			return msg, nil
		case c < '0' || c > '9':
			return nil, fmt.Errorf("frame length: unexpected byte %q (not octet-counting framing?)", c)
		case c == '0' && i == 0:
			return nil, errors.New("frame length: leading zero")
		}
		n = n*10 + int(c-'0')
		if n > maxFrame {
			return nil, fmt.Errorf("frame length: over %d bytes", maxFrame)
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

var timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$`)

// Parse parses one SYSLOG-MSG strictly (RFC 5424 section 6).
func Parse(b []byte) (Message, error) {
	var m Message
	s := string(b)
	// PRI VERSION
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("PRI: want '<'")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("PRI: want 1 to 3 digits between '<' and '>'")
	}
	digits := s[1:end]
	pri, err := strconv.Atoi(digits)
	if err != nil || pri > 191 || (len(digits) > 1 && digits[0] == '0') || strings.ContainsAny(digits, "+-") {
		return m, fmt.Errorf("PRI %q: want 0 to 191 without leading zeros", digits)
	}
	m.Pri = pri
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return m, errors.New("VERSION: want 1")
	}
	s = s[2:]
	fields := make([]string, 5)
	limits := []int{0, 255, 48, 128, 32}
	names := []string{"TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID"}
	for i := range fields {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			return m, fmt.Errorf("%s: message ends early", names[i])
		}
		fields[i], s = s[:sp], s[sp+1:]
		if fields[i] == "" {
			return m, fmt.Errorf("%s: empty (two spaces)", names[i])
		}
		if i > 0 {
			if len(fields[i]) > limits[i] {
				return m, fmt.Errorf("%s: %d bytes, at most %d", names[i], len(fields[i]), limits[i])
			}
			if !printASCII(fields[i]) {
				return m, fmt.Errorf("%s %q: want printable US-ASCII", names[i], fields[i])
			}
		}
	}
	if fields[0] != "-" {
		if !timestampRE.MatchString(fields[0]) {
			return m, fmt.Errorf("TIMESTAMP %q: not an RFC 5424 timestamp", fields[0])
		}
		if m.Timestamp, err = time.Parse(time.RFC3339Nano, fields[0]); err != nil {
			return m, fmt.Errorf("TIMESTAMP %q: %v", fields[0], err)
		}
	}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = fields[1], fields[2], fields[3], fields[4]
	// STRUCTURED-DATA
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		if !strings.HasPrefix(s, "[") {
			return m, errors.New("STRUCTURED-DATA: want '-' or '['")
		}
		seen := map[string]bool{}
		for strings.HasPrefix(s, "[") {
			var e Element
			if e, s, err = parseElement(s[1:]); err != nil {
				return m, err
			}
			if seen[e.ID] {
				return m, fmt.Errorf("SD-ID %s: appears twice", e.ID)
			}
			seen[e.ID] = true
			m.SD = append(m.SD, e)
		}
	}
	// MSG
	if s == "" {
		return m, nil
	}
	if !strings.HasPrefix(s, " ") {
		return m, fmt.Errorf("after STRUCTURED-DATA: want a space or the end, got %q", s[:1])
	}
	s = s[1:]
	if rest, ok := strings.CutPrefix(s, "\uFEFF"); ok {
		if !utf8.ValidString(rest) {
			return m, errors.New("MSG: BOM but not valid UTF-8")
		}
		m.Msg, m.HasBOM = rest, true
	} else {
		m.Msg = s
	}
	return m, nil
}

// parseElement parses an SD-ELEMENT after its '['; it returns the rest.
func parseElement(s string) (Element, string, error) {
	var e Element
	id, s, err := sdName(s, "SD-ID")
	if err != nil {
		return e, s, err
	}
	e.ID = id
	for {
		switch {
		case strings.HasPrefix(s, "]"):
			return e, s[1:], nil
		case !strings.HasPrefix(s, " "):
			return e, s, fmt.Errorf("SD-ELEMENT %s: want ' ' or ']'", id)
		}
		var p Param
		if p.Name, s, err = sdName(s[1:], "PARAM-NAME"); err != nil {
			return e, s, fmt.Errorf("SD-ELEMENT %s: %w", id, err)
		}
		if !strings.HasPrefix(s, `="`) {
			return e, s, fmt.Errorf("SD-PARAM %s: want =\"", p.Name)
		}
		s = s[2:]
		var v strings.Builder
		for {
			if s == "" {
				return e, s, fmt.Errorf("SD-PARAM %s: value not closed", p.Name)
			}
			c := s[0]
			if c == '"' {
				s = s[1:]
				break
			}
			if c == ']' {
				return e, s, fmt.Errorf("SD-PARAM %s: unescaped ']' in the value", p.Name)
			}
			if c == '\\' && len(s) > 1 && strings.IndexByte(`"\]`, s[1]) >= 0 {
				v.WriteByte(s[1])
				s = s[2:]
				continue
			}
			if c == '\\' {
				return e, s, fmt.Errorf("SD-PARAM %s: lone backslash (an unescaped '\\')", p.Name)
			}
			v.WriteByte(c)
			s = s[1:]
		}
		p.Value = v.String()
		if !utf8.ValidString(p.Value) {
			return e, s, fmt.Errorf("SD-PARAM %s: value not UTF-8", p.Name)
		}
		e.Params = append(e.Params, p)
	}
}

// sdName reads an SD-NAME: 1 to 32 printable US-ASCII but '=', ' ', ']', '"'.
func sdName(s, what string) (string, string, error) {
	i := 0
	for i < len(s) && s[i] > 32 && s[i] < 127 && s[i] != '=' && s[i] != ']' && s[i] != '"' {
		i++
	}
	if i == 0 || i > 32 {
		return "", s, fmt.Errorf("%s: want 1 to 32 characters, got %d", what, i)
	}
	return s[:i], s[i:], nil
}

func printASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
