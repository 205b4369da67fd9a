package sshd

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The legacy scp protocol runs `scp -t PATH` (upload) or `scp -f PATH`
// (download) on the server, with some of -d -p -r -v, as OpenSSH's `scp -O`
// sends it. Such a command is a file copy, so the sftp capability allows it too
// — but only when nothing else can hide in it: the command is the words
// "scp", options, an optional "--" and one path, all made of characters a
// shell gives no meaning to beyond globbing and ~, single-quoted strings and
// backslash escapes.

// isLegacySCP reports whether command is a plain scp server invocation.
func isLegacySCP(command string) bool {
	words, ok := shellWords(command)
	if !ok || len(words) < 3 || words[0] != "scp" {
		return false
	}
	direction := 0
	i := 1
	for ; i < len(words)-1 && isSCPOption(words[i]); i++ {
		direction += strings.Count(words[i], "t") + strings.Count(words[i], "f")
	}
	if direction != 1 {
		return false
	}
	if words[i] == "--" {
		i++
	} else if strings.HasPrefix(words[i], "-") {
		return false // an option we do not know
	}
	return i == len(words)-1 && words[i] != ""
}

// isSCPOption accepts "-t", "-f" and flags among -d -p -r -v, combined or not.
func isSCPOption(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	for _, c := range w[1:] {
		if !strings.ContainsRune("dfprtv", c) {
			return false
		}
	}
	return true
}

// shellWords splits a command made only of words separated by spaces, each
// word of characters a shell treats literally (beyond ~ and globbing) and
// single-quoted strings or backslash-escaped printable characters; anything
// else (variables, substitutions, operators, redirections, double quotes,
// control characters) makes it false.
func shellWords(cmd string) ([]string, bool) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(cmd); {
		switch c := cmd[i]; {
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\\' && i+1 < len(cmd) && cmd[i+1] >= 0x20 && cmd[i+1] < 0x7f:
			cur.WriteByte(cmd[i+1]) // an escaped printable character is literal
			i += 2
			inWord = true
		case c == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			i += j + 2
			inWord = true
		default:
			r, size := utf8.DecodeRuneInString(cmd[i:])
			if !literalRune(r) {
				return nil, false
			}
			cur.WriteRune(r)
			i += size
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, true
}

func literalRune(r rune) bool {
	switch {
	case r == utf8.RuneError:
		return false
	case r < 0x80:
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./~@%+=:,*?[]-", r)
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}
