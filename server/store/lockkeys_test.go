package store

import "testing"

// Two uses of one advisory lock key exclude each other: a transaction lock on
// the relays' session key waited for as long as any tier relay ran (every
// inventory write of a tier hung, and a restarted relay was refused).
func TestAdvisoryLockKeysDistinct(t *testing.T) {
	seen := map[int64]int{}
	for i, k := range advisoryLockKeys {
		if j, ok := seen[k]; ok {
			t.Fatalf("advisory lock keys %d and %d are both %#x", j, i, k)
		}
		seen[k] = i
	}
}
