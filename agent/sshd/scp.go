package sshd

import (
	"regexp"
	"strings"
)

// The legacy scp protocol runs `scp -t PATH` (upload) or `scp -f PATH`
// (download) on the server, with some of -d -p -r -v, as OpenSSH's `scp -O`
// sends it. Such a command is a file copy, so the sftp capability allows it too
// — but only when nothing else can hide in it: the command is the words
// "scp", options, an optional "--" and one path made of characters a shell
// gives no meaning to beyond globbing and ~ (or a single-quoted path).
var (
	scpOption   = regexp.MustCompile(`^-[dfprtv]+$`)
	scpPlain    = regexp.MustCompile(`^[\p{L}\p{N}_./~@%+=:,*?\[\]-]+$`)
	scpQuoted   = regexp.MustCompile(`^'[^']*'$`)
	scpLeadDash = regexp.MustCompile(`^-`)
)

// isLegacySCP reports whether command is a plain scp server invocation.
func isLegacySCP(command string) bool {
	words := strings.Split(command, " ")
	if len(words) < 3 || words[0] != "scp" {
		return false
	}
	direction := 0
	i := 1
	for ; i < len(words)-1 && scpOption.MatchString(words[i]); i++ {
		direction += strings.Count(words[i], "t") + strings.Count(words[i], "f")
	}
	if direction != 1 {
		return false
	}
	if words[i] == "--" && i < len(words)-1 {
		i++
	} else if scpLeadDash.MatchString(words[i]) {
		return false // an option we do not know
	}
	if i != len(words)-1 {
		return false
	}
	path := words[i]
	return path != "" && (scpPlain.MatchString(path) || scpQuoted.MatchString(path))
}
