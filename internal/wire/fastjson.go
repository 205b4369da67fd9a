package wire

import (
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written JSON path for the messages a relay handles once per agent
// and per run (the envelope, run, run_result, run_started, run_ack): the
// same bytes as encoding/json in both directions, at a fraction of the
// cost.
//
// The decoders are a fast path, not a second opinion: each one returns
// ok=false as soon as it meets anything it does not handle (a null, a key
// in another case or with escapes, a repeated key, a number with a fraction,
// trailing data, deep nesting...), and the caller then decodes the same
// bytes with encoding/json, which accepts or refuses them and words the
// error. So the fast path never accepts what the strict decoder refuses,
// and never decodes to anything else; FuzzDecode compares the two.

// lexer reads one JSON document from b, starting at i.
type lexer struct {
	b []byte
	i int
}

// maxSkipDepth bounds the nesting skip follows; deeper values take the slow
// path (encoding/json itself stops at 10,000).
const maxSkipDepth = 64

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c if it comes next.
func (l *lexer) next(c byte) bool {
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (l *lexer) end() bool {
	l.ws()
	return l.i == len(l.b)
}

// What member found.
const (
	memberBad = iota // not an object member: give up
	memberKey        // a key, and the lexer is at its value
	memberEnd        // the object's closing brace
)

// member reads the next key of an object whose opening brace was read
// (first: no member read yet), up to the start of its value. Keys must be
// plain (no escapes). The key aliases b.
func (l *lexer) member(first bool) ([]byte, int) {
	if l.next('}') {
		return nil, memberEnd
	}
	if !first && !l.next(',') {
		return nil, memberBad
	}
	k, ok := l.key()
	if !ok || !l.next(':') {
		return nil, memberBad
	}
	return k, memberKey
}

// key reads an object key made of printable ASCII without escapes. It
// aliases b.
func (l *lexer) key() ([]byte, bool) {
	if !l.next('"') {
		return nil, false
	}
	start := l.i
	for l.i < len(l.b) {
		c := l.b[l.i]
		if c == '"' {
			k := l.b[start:l.i]
			l.i++
			return k, true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
		l.i++
	}
	return nil, false
}

// str reads a string value, decoded as encoding/json decodes it.
func (l *lexer) str() (string, bool) {
	l.ws()
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		return "", false
	}
	start := l.i + 1
	for i := start; i < len(l.b); i++ {
		c := l.b[i]
		if c == '"' {
			l.i = i + 1
			return string(l.b[start:i]), true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			b, ok := l.unquote(start, i)
			return string(b), ok
		}
	}
	return "", false
}

// rawStr reads a string value and returns it as it stands, quotes included,
// after checking its syntax (for a json.Unmarshaler such as time.Time).
func (l *lexer) rawStr() ([]byte, bool) {
	l.ws()
	start := l.i
	if start >= len(l.b) || l.b[start] != '"' {
		return nil, false
	}
	for i := start + 1; i < len(l.b); i++ {
		c := l.b[i]
		if c == '"' {
			l.i = i + 1
			return l.b[start:l.i], true
		}
		if c == '\\' || c < 0x20 {
			if _, ok := l.unquote(start+1, i); !ok {
				return nil, false
			}
			return l.b[start:l.i], true
		}
	}
	return nil, false
}

// unquote decodes the string whose contents start at start, the first i-start
// bytes being plain ASCII, up to its closing quote, which it consumes. It
// follows encoding/json: the escapes of the JSON grammar only, control
// characters refused, invalid UTF-8 and lone surrogates become U+FFFD.
func (l *lexer) unquote(start, i int) ([]byte, bool) {
	out := make([]byte, 0, i-start+16)
	out = append(out, l.b[start:i]...)
	b := l.b
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			l.i = i + 1
			return out, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if i+1 >= len(b) {
				return nil, false
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b, i+2)
				if r < 0 {
					return nil, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						r2 = hex4(b, i+2)
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, false
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			out = utf8.AppendRune(out, r) // U+FFFD for an invalid byte, as encoding/json does
			i += size
		}
	}
	return nil, false
}

// hex4 reads four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// boolean reads true or false.
func (l *lexer) boolean() (bool, bool) {
	l.ws()
	switch {
	case hasPrefixAt(l.b, l.i, "true"):
		l.i += 4
		return true, true
	case hasPrefixAt(l.b, l.i, "false"):
		l.i += 5
		return false, true
	}
	return false, false
}

func hasPrefixAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// int64 reads an integer without fraction or exponent that fits an int64.
func (l *lexer) int64() (int64, bool) {
	l.ws()
	i, neg := l.i, false
	if i < len(l.b) && l.b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(l.b) || l.b[i] < '0' || l.b[i] > '9' {
		return 0, false
	}
	var n uint64
	if l.b[i] == '0' {
		i++
	} else {
		for ; i < len(l.b) && l.b[i] >= '0' && l.b[i] <= '9'; i++ {
			if n > (1<<63)/10 {
				return 0, false
			}
			n = n*10 + uint64(l.b[i]-'0')
		}
	}
	if n > 1<<63 || !neg && n == 1<<63 {
		return 0, false
	}
	if i < len(l.b) && (l.b[i] == '.' || l.b[i] == 'e' || l.b[i] == 'E') {
		return 0, false
	}
	l.i = i
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// skip checks and passes over one value of any kind, as encoding/json's
// scanner would, nested at most maxSkipDepth deep.
func (l *lexer) skip() bool {
	var stack [maxSkipDepth]byte // '{' or '[' for each open container
	depth := 0
	for {
		// A value.
		l.ws()
		if l.i >= len(l.b) {
			return false
		}
		switch c := l.b[l.i]; {
		case c == '{' || c == '[':
			if depth == maxSkipDepth {
				return false
			}
			l.i++
			stack[depth] = c
			depth++
			close := byte('}')
			if c == '[' {
				close = ']'
			}
			if l.next(close) {
				depth--
				break // an empty container is a whole value
			}
			if c == '{' {
				if _, ok := l.rawStr(); !ok || !l.next(':') {
					return false
				}
			}
			continue // its first element
		case c == '"':
			if _, ok := l.rawStr(); !ok {
				return false
			}
		case c == '-' || c >= '0' && c <= '9':
			if !l.number() {
				return false
			}
		case hasPrefixAt(l.b, l.i, "true"):
			l.i += 4
		case hasPrefixAt(l.b, l.i, "false"):
			l.i += 5
		case hasPrefixAt(l.b, l.i, "null"):
			l.i += 4
		default:
			return false
		}
		// After a value: the next element, or close containers.
		for {
			if depth == 0 {
				return true
			}
			open := stack[depth-1]
			if l.next(',') {
				if open == '{' {
					if _, ok := l.rawStr(); !ok || !l.next(':') {
						return false
					}
				}
				break
			}
			close := byte('}')
			if open == '[' {
				close = ']'
			}
			if !l.next(close) {
				return false
			}
			depth--
		}
	}
}

// number passes over a number of the JSON grammar.
func (l *lexer) number() bool {
	b, i := l.b, l.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	l.i = i
	return true
}

// appendString appends s as a JSON string, escaped exactly as encoding/json
// escapes it (HTML characters, U+2028 and U+2029 included; invalid UTF-8
// becomes U+FFFD).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
