package signature

// matchPattern reports whether s matches the OpenSSH wildcard pattern p, in
// which '*' matches any run of bytes (also none) and '?' exactly one byte,
// case-sensitively (OpenSSH match_pattern). It runs in O(len(s)·len(p)) at
// worst, so hostile patterns cannot make it blow up.
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0 // position of the last '*' in p, and where in s it started
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			// Let the last '*' swallow one more byte and retry.
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchList matches s against a list of patterns the way OpenSSH
// match_pattern_list does: a pattern prefixed with '!' that matches denies
// outright, otherwise any matching pattern allows.
func matchList(s string, patterns []string) bool {
	ok := false
	for _, p := range patterns {
		if len(p) > 0 && p[0] == '!' {
			if matchPattern(s, p[1:]) {
				return false
			}
			continue
		}
		if matchPattern(s, p) {
			ok = true
		}
	}
	return ok
}
