package sshd

import "testing"

func TestProcSession(t *testing.T) {
	for stat, want := range map[string]int{
		"1234 (bash) S 1 1234 1234 34816 1234 4194560": 1234,
		"99 (a) b) c) R 5 6 77 0":                      77,
		"99 (weird":                                    -1,
		"99 (x) S 1":                                   -1,
	} {
		if got := procSession([]byte(stat)); got != want {
			t.Errorf("procSession(%q) = %d, want %d", stat, got, want)
		}
	}
}
