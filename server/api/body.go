package api

import (
	"fmt"
	"unicode/utf8"
)

// checkJSONText reports where a JSON body carries text that encoding/json
// would silently change: bytes that are not UTF-8, and \u escapes of lone
// UTF-16 surrogates. Both decode to U+FFFD, so a reason, a parameter or a
// name would be stored as something other than what was sent: such a body
// is refused instead, like any other malformed field.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, n := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return fmt.Errorf("not valid UTF-8 at byte %d: send text as UTF-8", off)
	}
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(b) {
				return nil // the JSON decoder reports the truncation
			}
			if b[i+1] != 'u' {
				i++ // a one-character escape, \" and \\ included
				continue
			}
			u, ok := hex4(b, i+2)
			if !ok {
				return nil // the JSON decoder reports the bad escape
			}
			switch {
			case u >= 0xD800 && u <= 0xDBFF: // high surrogate: a low one must follow
				if lo, ok := hex4(b, i+8); ok && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
				return fmt.Errorf("a lone UTF-16 surrogate \\u%04x at byte %d: send text as UTF-8", u, i)
			case u >= 0xDC00 && u <= 0xDFFF:
				return fmt.Errorf("a lone UTF-16 surrogate \\u%04x at byte %d: send text as UTF-8", u, i)
			}
			i += 5
		}
	}
	return nil
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
