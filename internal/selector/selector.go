// Package selector parses and evaluates target selectors: the expressions a
// technician uses to pick agents (patchbay agents list --target, patchbay run
// --target).
//
// # Grammar
//
// A selector is a comma-separated list of terms; an agent is selected when it
// matches every term. Commas inside parentheses belong to an in/notin list.
//
//	selector = "" | "*" | "all" | term { "," term }
//	term     = key "=" value
//	         | key "!=" value
//	         | key "in" "(" value { "," value } ")"
//	         | key "notin" "(" value { "," value } ")"
//	key      = [A-Za-z0-9][A-Za-z0-9_.-]{0,62}
//	value    = [A-Za-z0-9_.:/*?\[\]-]+
//
// Spaces and tabs are allowed around every token; the operators in and notin
// may be written in any letter case. The keys id, hostname, os
// and arch name the agent's own fields (recognised in any letter case, written
// in lower case by [Selector.String]); any other key is a tag key and is
// case-sensitive. Semantics:
//
//   - hostname values are shell globs in the syntax of [path.Match] (*, ?,
//     [a-z]) and match case-insensitively;
//   - os and arch compare exactly but case-insensitively;
//   - id values must be UUIDs and compare case-insensitively;
//   - tag values compare exactly (no globbing: "site=par*" matches only the
//     literal value "par*");
//   - "=" and "in" on a tag the agent lacks do not match; "!=" and "notin" on a
//     missing tag do match.
//
// The keys software, software.version, memory and disk.free are inventory
// terms (inventory.go): they take the operators <, <=, > and >= too, and
// Match leaves them to the store.
//
// An empty selector, "*" or "all" selects every agent. Limits: 4096 bytes
// (also for the canonical form), 64 terms, 256 values per list.
//
// Examples:
//
//	os=linux,site=paris
//	hostname=web-*,env!=prod
//	os in (linux,darwin),arch=arm64
//	site notin (lab,test)
//	id=0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e
//
// Errors name the term (1-based) and its text, for example
//
//	selector: term 2 "site=par is": unexpected text after value
package selector

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Help is a concise description of the selector syntax for command-line help
// and the README.
const Help = `Target selectors choose agents. A selector is a comma-separated list of
terms; an agent is selected when it matches every term:

  key=value              key equals value
  key!=value             key differs from value (or the agent lacks that tag)
  key in (v1,v2,...)     key equals one of the values
  key notin (v1,v2,...)  key equals none of the values (or the tag is missing)

id, hostname, os and arch are the agent's own fields; any other key is a tag
given at enrollment (--tags k=v). hostname takes shell globs (*, ?, [0-9]);
hostname, os, arch and id compare case-insensitively; id takes agent UUIDs;
tag values compare exactly. An empty selector, "*" or "all" selects every
agent. Quote selectors for the shell.

Inventory terms test what agents report (patchbay inventory show):
  software=NAME          has package NAME (also !=, in, notin; case-insensitive)
  software.version<V     with a version before V (<, <=, >, >=, =, !=); it
                         narrows the software term before it: one package
                         must match both. Versions compare in Debian order.
  memory<8GiB            total memory (<, <=, >, >=)
  disk.free<10%          some disk has less than 10% free (or a size: 10GiB)
Sizes: B, KiB, MiB, GiB, TiB (also K, M, G, T), KB, MB, GB, TB.

Examples:
  --target 'os=linux,site=paris'
  --target 'hostname=web-*,env!=prod'
  --target 'os in (linux,darwin),arch=arm64'
  --target 'site notin (lab,test)'
  --target 'id=0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e'
  --target 'software=openssl,software.version<3.0.14'
  --target 'os=windows,memory<8GiB'
`

// Limits enforced by [Parse].
const (
	MaxLen    = 4096 // bytes in the selector text and in its canonical form
	MaxTerms  = 64   // terms per selector
	MaxValues = 256  // values per in/notin list
	maxKeyLen = 63
)

// Attrs are the attributes of one agent that a selector can test.
type Attrs struct {
	ID       string
	Hostname string
	OS       string
	Arch     string
	Tags     map[string]string
}

// Selector is a parsed target selector. The zero value and a nil *Selector
// match every agent. A Selector is immutable and safe for concurrent use.
type Selector struct {
	terms []term
	canon string
}

type op uint8

const (
	opEq op = iota
	opNe
	opIn
	opNotIn
	opLt // <, <=, >, >=: inventory terms only (inventory.go)
	opLe
	opGt
	opGe
)

type field uint8

const (
	fieldTag field = iota
	fieldID
	fieldHostname
	fieldOS
	fieldArch
	fieldSoftware        // software: a package name (inventory.go)
	fieldSoftwareVersion // software.version
	fieldMemory          // memory
	fieldDiskFree        // disk.free
)

type term struct {
	key    string // lower case for agent fields
	field  field
	op     op
	values []string // lower case for agent fields
}

// Parse parses a selector. The error, if any, names the offending term and
// what is wrong with it.
func Parse(s string) (*Selector, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("selector: too long (%d bytes, max %d)", len(s), MaxLen)
	}
	t := strings.Trim(s, spaces)
	if t == "" || t == "*" || t == "all" {
		return &Selector{}, nil
	}
	parts, err := split(t)
	if err != nil {
		return nil, err
	}
	sel := &Selector{terms: make([]term, 0, len(parts))}
	for i, raw := range parts {
		tm, err := parseTerm(raw, i, len(parts))
		if err != nil {
			return nil, err
		}
		sel.terms = append(sel.terms, tm)
	}
	sel.canon = sel.format()
	if len(sel.canon) > MaxLen {
		return nil, fmt.Errorf("selector: too long once written canonically (%d bytes, max %d)", len(sel.canon), MaxLen)
	}
	return sel, nil
}

// MustParse is like [Parse] but panics on error; for tests and constants.
func MustParse(s string) *Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// All reports whether the selector matches every agent.
func (s *Selector) All() bool { return s == nil || len(s.terms) == 0 }

// UsesTags reports whether any term reads a tag, so that a caller matching
// many agents can leave Attrs.Tags unset when it does not.
func (s *Selector) UsesTags() bool {
	if s == nil {
		return false
	}
	for i := range s.terms {
		if s.terms[i].field == fieldTag {
			return true
		}
	}
	return false
}

// Match reports whether an agent with attributes a is selected.
func (s *Selector) Match(a Attrs) bool {
	if s == nil {
		return true
	}
	for i := range s.terms {
		if !s.terms[i].match(a) {
			return false
		}
	}
	return true
}

// String returns the canonical form of the selector: no optional spaces,
// agent-field keys and their values in lower case, lists written as
// "key in (a,b)", and "*" for a selector that matches every agent. Parsing
// the canonical form gives an equivalent selector.
func (s *Selector) String() string {
	if s.All() {
		return "*"
	}
	if s.canon == "" {
		return s.format()
	}
	return s.canon
}

func (s *Selector) format() string {
	if len(s.terms) == 0 {
		return "*"
	}
	var b strings.Builder
	for i, t := range s.terms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.key)
		switch t.op {
		case opEq:
			b.WriteByte('=')
			b.WriteString(t.values[0])
		case opNe:
			b.WriteString("!=")
			b.WriteString(t.values[0])
		case opLt, opLe, opGt, opGe:
			b.WriteString(opText[t.op])
			b.WriteString(t.values[0])
		case opIn, opNotIn:
			if t.op == opIn {
				b.WriteString(" in (")
			} else {
				b.WriteString(" notin (")
			}
			b.WriteString(strings.Join(t.values, ","))
			b.WriteByte(')')
		}
	}
	return b.String()
}

func (t *term) match(a Attrs) bool {
	if t.field.inventory() {
		return true // answered by the store: see Inventory
	}
	var val string
	present := true
	switch t.field {
	case fieldID:
		val = a.ID
	case fieldHostname:
		val = strings.ToLower(a.Hostname)
	case fieldOS:
		val = a.OS
	case fieldArch:
		val = a.Arch
	default:
		val, present = a.Tags[t.key]
	}
	hit := false
	if present {
		for _, v := range t.values {
			switch t.field {
			case fieldHostname:
				// Patterns were validated by Parse; an error cannot occur.
				hit, _ = path.Match(v, val)
			case fieldTag:
				hit = v == val
			default:
				hit = strings.EqualFold(v, val)
			}
			if hit {
				break
			}
		}
	}
	if t.op == opEq || t.op == opIn {
		return hit
	}
	return !hit
}

// ---- parsing ----

const spaces = " \t\r\n"

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isKeyChar(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '-' }

func isValueChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '_', '.', ':', '/', '*', '?', '[', ']', '-':
		return true
	}
	return false
}

// termError formats an error about term n (0-based) with text text.
func termError(n int, text, format string, args ...any) error {
	text = strings.Trim(text, spaces)
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	return fmt.Errorf("selector: term %d %q: %s", n+1, text, fmt.Sprintf(format, args...))
}

// upToComma returns s from start to the next top-level comma (or the end).
func upToComma(s string, start int) string {
	if i := strings.IndexByte(s[start:], ','); i >= 0 {
		return s[start : start+i]
	}
	return s[start:]
}

// split cuts s at commas outside parentheses and checks that parentheses
// balance.
func split(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return nil, termError(len(parts), upToComma(s, start), `unmatched ")"`)
			}
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, termError(len(parts), s[start:], `unclosed "("`)
	}
	parts = append(parts, s[start:])
	if len(parts) > MaxTerms {
		return nil, fmt.Errorf("selector: too many terms (%d, max %d)", len(parts), MaxTerms)
	}
	return parts, nil
}

// scanner walks one term.
type scanner struct {
	s string
	i int
}

func (p *scanner) eof() bool  { return p.i >= len(p.s) }
func (p *scanner) peek() byte { return p.s[p.i] }

// char returns the character at the cursor, decoded as UTF-8, for messages.
func (p *scanner) char() rune {
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return r
}

// skipSpace skips blanks and reports whether it skipped any.
func (p *scanner) skipSpace() bool {
	start := p.i
	for p.i < len(p.s) && isSpace(p.s[p.i]) {
		p.i++
	}
	return p.i > start
}

func (p *scanner) take(pred func(byte) bool) string {
	start := p.i
	for p.i < len(p.s) && pred(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func parseTerm(raw string, n, total int) (term, error) {
	text := strings.Trim(raw, spaces)
	fail := func(format string, args ...any) (term, error) {
		return term{}, termError(n, text, format, args...)
	}
	if text == "" {
		switch {
		case n == total-1:
			return fail("empty term (trailing comma?)")
		case n == 0:
			return fail("empty term (leading comma?)")
		default:
			return fail("empty term (doubled comma?)")
		}
	}
	p := &scanner{s: text}

	// Key.
	key := p.take(isKeyChar)
	if key == "" {
		if c := p.peek(); c == '=' || c == '!' {
			return fail("missing key")
		}
		return fail("invalid character %q in key", p.char())
	}
	if !isAlnum(key[0]) {
		return fail("key %q must start with a letter or digit", key)
	}
	if len(key) > maxKeyLen {
		return fail("key longer than %d characters", maxKeyLen)
	}
	var t term
	switch lk := strings.ToLower(key); lk {
	case "id":
		t.field, t.key = fieldID, lk
	case "hostname":
		t.field, t.key = fieldHostname, lk
	case "os":
		t.field, t.key = fieldOS, lk
	case "arch":
		t.field, t.key = fieldArch, lk
	case "software":
		t.field, t.key = fieldSoftware, lk
	case "software.version":
		t.field, t.key = fieldSoftwareVersion, lk
	case "memory":
		t.field, t.key = fieldMemory, lk
	case "disk.free":
		t.field, t.key = fieldDiskFree, lk
	default:
		t.field, t.key = fieldTag, key
	}

	// Operator.
	spaced := p.skipSpace()
	if p.eof() {
		return fail(`missing operator after key %q (want =, !=, in or notin)`, key)
	}
	switch c := p.peek(); {
	case c == '=':
		p.i++
		if !p.eof() && p.peek() == '=' {
			return fail(`"==" is not an operator; use "="`)
		}
		t.op = opEq
	case c == '!':
		p.i++
		if p.eof() || p.peek() != '=' {
			return fail(`unknown operator "!"; use "!=" or notin`)
		}
		p.i++
		t.op = opNe
	case c == '<' || c == '>':
		if !t.field.ordered() {
			return fail("operator %q works only with software.version, memory and disk.free", string(c))
		}
		p.i++
		t.op = opLt
		if c == '>' {
			t.op = opGt
		}
		if !p.eof() && p.peek() == '=' {
			p.i++
			t.op++
		}
	case isLetter(c) && spaced:
		w := p.take(isKeyChar)
		switch strings.ToLower(w) {
		case "in":
			t.op = opIn
		case "notin":
			t.op = opNotIn
		default:
			return fail("unknown operator %q (want =, !=, in or notin)", w)
		}
	default:
		return fail("invalid character %q after key %q", p.char(), key)
	}

	if err := t.field.checkOp(t.op); err != "" {
		return fail("%s", err)
	}
	valueChar := t.field.valueChar()

	// Value(s).
	if t.op != opIn && t.op != opNotIn {
		p.skipSpace()
		v := p.take(valueChar)
		if v == "" {
			if p.eof() {
				return fail("missing value")
			}
			if p.peek() == '(' {
				return fail(`a list needs "in" or "notin", as in "key in (a,b)"`)
			}
			return fail("invalid character %q in value", p.char())
		}
		v, err := checkValue(t.field, v)
		if err != "" {
			return fail("%s", err)
		}
		t.values = []string{v}
		if !p.eof() {
			if !p.skipSpace() {
				return fail("invalid character %q in value", p.char())
			}
			if !p.eof() {
				return fail("unexpected text after value")
			}
		}
		return t, nil
	}

	p.skipSpace()
	if p.eof() || p.peek() != '(' {
		return fail(`expected "(" after %s`, opName(t.op))
	}
	p.i++
	for {
		p.skipSpace()
		v := p.take(valueChar)
		if v == "" {
			switch {
			case p.eof():
				return fail(`unclosed "("`)
			case p.peek() == ')' && len(t.values) == 0:
				return fail("empty list")
			case p.peek() == ')' || p.peek() == ',':
				return fail("empty value in list")
			default:
				return fail("invalid character %q in value", p.char())
			}
		}
		v, err := checkValue(t.field, v)
		if err != "" {
			return fail("%s", err)
		}
		if len(t.values) == MaxValues {
			return fail("more than %d values in list", MaxValues)
		}
		t.values = append(t.values, v)
		spaced := p.skipSpace()
		if p.eof() {
			return fail(`unclosed "("`)
		}
		c, r := p.peek(), p.char()
		p.i++
		if c == ')' {
			break
		}
		if c != ',' {
			if spaced {
				return fail(`expected "," or ")" after value %q`, v)
			}
			return fail("invalid character %q in value", r)
		}
	}
	p.skipSpace()
	if !p.eof() {
		return fail("unexpected text after list")
	}
	return t, nil
}

func opName(o op) string {
	if o == opNotIn {
		return "notin"
	}
	return "in"
}

// checkValue validates v for the field and returns its normalised form, or a
// reason why it is invalid.
func checkValue(f field, v string) (string, string) {
	switch f {
	case fieldTag:
		return v, ""
	case fieldSoftware, fieldSoftwareVersion, fieldMemory, fieldDiskFree:
		return checkInvValue(f, v)
	case fieldID:
		if !isUUID(v) {
			return "", fmt.Sprintf("id %q is not a UUID", v)
		}
	case fieldHostname:
		if _, err := path.Match(strings.ToLower(v), ""); err != nil {
			return "", fmt.Sprintf("bad glob pattern %q", v)
		}
	}
	return strings.ToLower(v), ""
}

// isUUID reports whether s has the textual UUID form
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits, any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
