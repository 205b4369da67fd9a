package store

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// Migration 00028 converts the lists stored as text rows (00023) into
// packages and pairs of numbers, and its Down converts them back, on both
// engines: what the store answers is the same before and after.
func TestInventoryMigrationConvertsLists(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	ids := mkAgents(t, s, 3)
	if err := s.PutHardware(ctx, []HardwareReport{{AgentID: ids[2], Hardware: Hardware{MemoryBytes: 8 << 30}, At: ts}}); err != nil {
		t.Fatal(err)
	}
	p := migrationProvider(t, s)
	if _, err := p.DownTo(ctx, 27); err != nil {
		t.Fatalf("down to 27: %v", err)
	}
	// Lists as 00023 stored them: agent 0 with an old openssl, agent 1 with
	// a fixed one and the same bash (one package row for both after).
	lists := map[string][]Package{
		ids[0]: {{"bash", "5.2.15-2", "dpkg"}, {"openssl", "3.0.11-1", "dpkg"}},
		ids[1]: {{"bash", "5.2.15-2", "dpkg"}, {"openssl", "3.0.14-1", "dpkg"}, {"vim", "9.0", "dpkg"}},
	}
	for id, l := range lists {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO agent_hardware (agent_id, software_hash, software_count, software_at) VALUES ($1, $2, $3, $4)`,
			id, "h-"+id, len(l), dbTime(ts)); err != nil {
			t.Fatal(err)
		}
		for _, pk := range l {
			if _, err := s.db.ExecContext(ctx, `INSERT INTO agent_software (agent_id, name, version, source, name_key, version_key) VALUES ($1, $2, $3, $4, $5, $6)`,
				id, pk.Name, pk.Version, pk.Source, pk.Name, VersionKey(pk.Version)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("up: %v", err)
	}
	var pkgs int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM software_packages`).Scan(&pkgs); err != nil || pkgs != 4 {
		t.Fatalf("%d packages, %v; want 4 (bash once)", pkgs, err)
	}
	oldSSL := ids[0]
	check := func(when string) {
		t.Helper()
		for id, want := range lists {
			if got, err := s.ListSoftware(ctx, id); err != nil || !slices.Equal(got, want) {
				t.Errorf("%s: list of %s: %v, %v; want %v", when, id, got, err, want)
			}
		}
		set, err := s.InventoryMatch(ctx, []InvCond{{Kind: CondSoftware, Names: []string{"OpenSSL"}, Versions: []VersionCmp{{Op: "<", Version: "3.0.14"}}}})
		if err != nil || len(set) != 1 || !set[oldSSL] {
			t.Errorf("%s: openssl<3.0.14: %v, %v; want %s only", when, set, err, oldSSL)
		}
		if h, err := s.SoftwareHolders(ctx, Scope{All: true}, "bash", ""); err != nil || len(h) != 2 {
			t.Errorf("%s: bash holders %v, %v", when, h, err)
		}
	}
	check("after 00028")
	// The converted list is the stored one: same hash writes nothing, a
	// change is diffed against it.
	if n, err := s.PutSoftware(ctx, ids[0], "h-"+ids[0], lists[ids[0]], ts.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("same hash: %d, %v", n, err)
	}
	up := []Package{{"bash", "5.2.15-2", "dpkg"}, {"openssl", "3.0.15-1", "dpkg"}}
	if n, err := s.PutSoftware(ctx, ids[0], "h2", up, ts.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("upgrade: %d, %v; want 1 change", n, err)
	}
	if h, err := s.SoftwareHistory(ctx, ids[0], 10); err != nil || len(h) != 1 || h[0].Change != ChangeUpgraded || h[0].OldVersion != "3.0.11-1" {
		t.Fatalf("history %+v, %v", h, err)
	}
	// An agent numbered after the conversion does not collide.
	if _, err := s.PutSoftware(ctx, ids[2], "h3", []Package{{"openssl", "3.0.11-1", "dpkg"}}, ts); err != nil {
		t.Fatal(err)
	}
	lists[ids[0]], lists[ids[2]] = up, []Package{{"openssl", "3.0.11-1", "dpkg"}}
	set, err := s.InventoryMatch(ctx, []InvCond{{Kind: CondSoftware, Names: []string{"openssl"}, Versions: []VersionCmp{{Op: "<", Version: "3.0.14"}}}})
	if err != nil || len(set) != 1 || !set[ids[2]] {
		t.Fatalf("openssl<3.0.14 after changes: %v, %v; want agent 2 only", set, err)
	}
	// Down converts back to text rows.
	if _, err := p.DownTo(ctx, 27); err != nil {
		t.Fatalf("down to 27 again: %v", err)
	}
	for id, want := range lists {
		rows, err := s.db.QueryContext(ctx, `SELECT name, version, source FROM agent_software WHERE agent_id = $1 ORDER BY name, version`, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []Package
		for rows.Next() {
			var pk Package
			if err := rows.Scan(&pk.Name, &pk.Version, &pk.Source); err != nil {
				t.Fatal(err)
			}
			got = append(got, pk)
		}
		rows.Close()
		if !slices.Equal(got, want) {
			t.Errorf("00023 rows of %s after down: %v; want %v", id, got, want)
		}
	}
	// And up again, in a store whose id cache is new (ids were renumbered).
	s = openTestStore(t, url)
	oldSSL = ids[2]
	check("after down and up")
}
