package e2e

import (
	"strings"
	"testing"
)

// TestTierRelayWithoutNATS: a relay started without --nats on a database
// that a tier uses would schedule the tier's jobs a second time (it takes
// no job lease). It refuses to start and names the fix; and a relay of a
// tier refuses a database that a relay without --nats holds.
func TestTierRelayWithoutNATS(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	_, errOut, err := try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--db", base.db,
		"--tier-key-file", base.key)
	if err == nil || !strings.Contains(errOut, "other relays use this database") || !strings.Contains(errOut, "--nats URL") {
		t.Fatalf("a relay without --nats beside a tier: %v\n%s", err, errOut)
	}

	// The other way round: a relay alone on PostgreSQL, then a tier relay.
	db, key := sharedPG.NewDB(t), newTierKey(t)
	StartRelayArgs(t, "--db", db, "--tier-key-file", key)
	_, errOut, err = try(nil, bin("patchbay-server"), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--db", db,
		"--tier-key-file", key, "--nats", "embedded", "--nats-listen", freePort(t))
	if err == nil || !strings.Contains(errOut, "restart that relay with --nats URL") {
		t.Fatalf("a relay of a tier beside a relay without --nats: %v\n%s", err, errOut)
	}
}
