package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestVersionKeyOrder(t *testing.T) {
	// Each version is less than the next, as dpkg --compare-versions says.
	ordered := []string{"0~beta", "0", "0.9", "1.0~rc1", "1.0", "1.0-1", "1.0a", "1.0.0", "1.0.1", "1.0.10",
		"1.2", "3.0.13-0ubuntu1", "3.0.13-1~deb12u1", "3.0.13-1", "3.0.14", "3.0.14-0ubuntu0.1", "3.1", "127.0.2", "128", "128.0", "1:0.1"}
	for i := 1; i < len(ordered); i++ {
		a, b := VersionKey(ordered[i-1]), VersionKey(ordered[i])
		if !(a < b) {
			t.Errorf("VersionKey(%q) = %s is not < VersionKey(%q) = %s", ordered[i-1], a, ordered[i], b)
		}
	}
	if VersionKey("1.01") != VersionKey("1.1") {
		t.Error("leading zeros should not matter")
	}
	for _, c := range VersionKey("2:1.0~rc1+dfsg-ü") {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			t.Fatalf("key has %q: want lower-case hex only", c)
		}
	}
}

// mkAgents enrolls n agents and returns their IDs.
func mkAgents(t *testing.T, s *Store, n int) []string {
	t.Helper()
	mkToken(t, s, "inv", func(e *EnrollToken) { e.UsesAllowed = n })
	var ids []string
	for i := range n {
		a, _, err := s.EnrollAgent(context.Background(), "inv", Agent{ID: NewID(), Hostname: fmt.Sprintf("pc-%02d", i)}, ts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// tableCounts returns the row count of the inventory tables.
func tableCounts(t *testing.T, s *Store) [3]int {
	t.Helper()
	var out [3]int
	for i, tbl := range []string{"agent_hardware", "agent_packages", "agent_software_history"} {
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + tbl).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestPutSoftwareDiffAndHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	id := mkAgents(t, s, 1)[0]
	v1 := []Package{{"bash", "5.2.15-2", "dpkg"}, {"linux-image", "6.1.0-17", "dpkg"}, {"openssl", "3.0.11-1", "dpkg"}, {"vim", "9.0", "dpkg"}}
	n, err := s.PutSoftware(ctx, id, "h1", v1, ts)
	if err != nil || n != 0 {
		t.Fatalf("first list: %d changes, %v; want 0 (the baseline has no history)", n, err)
	}
	// Unchanged hash: nothing is read or written.
	before := tableCounts(t, s)
	if n, err := s.PutSoftware(ctx, id, "h1", v1, ts.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("same hash: %d, %v", n, err)
	}
	// A new hash with the same list (say, the agent lost its memory) writes no rows.
	if n, err := s.PutSoftware(ctx, id, "h1b", v1, ts.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("same list: %d, %v", n, err)
	}
	if after := tableCounts(t, s); after != before {
		t.Fatalf("rows %v -> %v after an unchanged list", before, after)
	}
	// openssl upgraded, vim removed, curl installed, a second kernel installed.
	v2 := []Package{{"bash", "5.2.15-2", "dpkg"}, {"curl", "7.88", "dpkg"}, {"linux-image", "6.1.0-17", "dpkg"},
		{"linux-image", "6.1.0-18", "dpkg"}, {"openssl", "3.0.14-1", "dpkg"}}
	at2 := ts.Add(2 * time.Hour)
	n, err = s.PutSoftware(ctx, id, "h2", v2, at2)
	if err != nil || n != 4 {
		t.Fatalf("second list: %d changes, %v; want 4", n, err)
	}
	hist, err := s.SoftwareHistory(ctx, id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range hist {
		if c.At.Equal(at2) {
			got = append(got, fmt.Sprintf("%s %s %s>%s", c.Change, c.Name, c.OldVersion, c.NewVersion))
		}
	}
	want := []string{"installed curl >7.88", "installed linux-image >6.1.0-18", "upgraded openssl 3.0.11-1>3.0.14-1", "removed vim 9.0>"}
	if !slices.Equal(got, want) {
		t.Errorf("history at t2:\n got %q\nwant %q", got, want)
	}
	if len(hist) != 4 {
		t.Errorf("history has %d entries, want 4", len(hist))
	}
	list, err := s.ListSoftware(ctx, id)
	if err != nil || !slices.Equal(list, v2) {
		t.Errorf("stored list %v, %v; want %v", list, err, v2)
	}
	info, err := s.GetInventory(ctx, id)
	if err != nil || info.SoftwareCount != 5 || info.SoftwareHash != "h2" || !info.SoftwareAt.Equal(at2) {
		t.Errorf("inventory info %+v, %v", info, err)
	}
}

func TestPutHardwareAndSelect(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids := mkAgents(t, s, 3)
	boot := ts.Add(-time.Hour)
	reports := []HardwareReport{
		{AgentID: ids[0], Hardware: Hardware{CPUModel: "Xeon", CPUCount: 4, MemoryBytes: 4 << 30, Serial: "S1",
			Disks: []Disk{{"/", 100 << 30, 5 << 30}, {"/home", 100 << 30, 50 << 30}}}, BootTime: boot, At: ts},
		{AgentID: ids[1], Hardware: Hardware{MemoryBytes: 16 << 30, Disks: []Disk{{"/", 100 << 30, 60 << 30}}}, At: ts},
	}
	if err := s.PutHardware(ctx, reports); err != nil {
		t.Fatal(err)
	}
	// The same report again changes nothing, not even updated_at.
	again := slices.Clone(reports)
	again[0].At = ts.Add(time.Hour)
	if err := s.PutHardware(ctx, again); err != nil {
		t.Fatal(err)
	}
	info, err := s.GetInventory(ctx, ids[0])
	if err != nil || !info.UpdatedAt.Equal(ts) || !info.BootTime.Equal(boot) || info.Hardware.Serial != "S1" || len(info.Hardware.Disks) != 2 {
		t.Fatalf("inventory %+v, %v", info, err)
	}
	if _, err := s.GetInventory(ctx, ids[2]); err != ErrNotFound {
		t.Errorf("agent without inventory: %v, want ErrNotFound", err)
	}
	for _, p := range []struct {
		id   string
		pkgs []Package
	}{
		{ids[0], []Package{{"openssl", "3.0.11-1", "dpkg"}, {"firefox", "127.0.2", "dpkg"}}},
		{ids[1], []Package{{"OpenSSL", "3.0.14", "rpm"}}},
		{ids[2], []Package{{"openssl", "1.1.1w", "dpkg"}, {"openssl", "3.0.15", "dpkg"}}},
	} {
		if _, err := s.PutSoftware(ctx, p.id, "h-"+p.id, p.pkgs, ts); err != nil {
			t.Fatal(err)
		}
	}
	match := func(conds ...InvCond) []string {
		t.Helper()
		set, err := s.InventoryMatch(ctx, conds)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for id := range set {
			out = append(out, id)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(v ...string) []string { sort.Strings(v); return v }
	cases := []struct {
		name  string
		conds []InvCond
		want  []string
	}{
		{"software=openssl", []InvCond{{Kind: CondSoftware, Names: []string{"openssl"}}}, sorted(ids...)},
		{"openssl<3.0.14", []InvCond{{Kind: CondSoftware, Names: []string{"openssl"}, Versions: []VersionCmp{{"<", "3.0.14"}}}}, sorted(ids[0], ids[2])},
		{"openssl>=3.0.14,<3.0.15", []InvCond{{Kind: CondSoftware, Names: []string{"openssl"}, Versions: []VersionCmp{{">=", "3.0.14"}, {"<", "3.0.15"}}}}, []string{ids[1]}},
		{"firefox<128", []InvCond{{Kind: CondSoftware, Names: []string{"firefox"}, Versions: []VersionCmp{{"<", "128"}}}}, []string{ids[0]}},
		{"software!=firefox", []InvCond{{Kind: CondSoftware, Names: []string{"firefox"}, Negate: true}}, sorted(ids[1], ids[2])},
		{"memory<8GiB", []InvCond{{Kind: CondMemory, Op: "<", Value: 8 << 30}}, []string{ids[0]}},
		{"disk.free<10%", []InvCond{{Kind: CondDiskFree, Op: "<", Value: 100_000, PPM: true}}, []string{ids[0]}},
		{"disk.free>10GiB", []InvCond{{Kind: CondDiskFree, Op: ">", Value: 10 << 30}}, []string{ids[1]}},
		{"both", []InvCond{{Kind: CondSoftware, Names: []string{"openssl"}}, {Kind: CondMemory, Op: ">=", Value: 8 << 30}}, []string{ids[1]}},
	}
	for _, c := range cases {
		if got := match(c.conds...); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	h, err := s.SoftwareHolders(ctx, Scope{All: true}, "OPENSSL", "3.0.14")
	if err != nil || len(h) != 2 || h[0].Hostname != "pc-00" || h[1].Version != "1.1.1w" {
		t.Errorf("holders %+v, %v", h, err)
	}
	if h, err := s.SoftwareHolders(ctx, Scope{}, "openssl", ""); err != nil || len(h) != 0 {
		t.Errorf("holders in an empty scope: %+v, %v", h, err)
	}
}

func TestPutSoftwareBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids := mkAgents(t, s, 3)
	v1 := []Package{{"curl", "7.88", "dpkg"}}
	if _, err := s.PutSoftware(ctx, ids[0], "a1", v1, ts); err != nil {
		t.Fatal(err)
	}
	n, err := s.PutSoftwareBatch(ctx, []SoftwareList{
		{ids[2], "c1", []Package{{"zsh", "5.9", "dpkg"}}},
		{ids[0], "a1", v1}, // unchanged: skipped
		{ids[1], "b1", []Package{{"curl", "8.0", "rpm"}}},
		{ids[0], "a2", []Package{{"curl", "8.0", "dpkg"}}},
	}, ts.Add(time.Hour))
	if err != nil || !slices.Equal(n, []int{0, 0, 0, 1}) {
		t.Fatalf("batch: %v, %v; want [0 0 0 1]", n, err)
	}
	for i, want := range []string{"curl 8.0", "curl 8.0", "zsh 5.9"} {
		got, err := s.ListSoftware(ctx, ids[i])
		if err != nil || len(got) != 1 || got[0].Name+" "+got[0].Version != want {
			t.Errorf("agent %d: %v, %v; want %s", i, got, err, want)
		}
	}
	h, err := s.SoftwareHistory(ctx, ids[0], 10)
	if err != nil || len(h) != 1 || h[0].Change != ChangeUpgraded || h[0].OldVersion != "7.88" {
		t.Errorf("history %+v, %v", h, err)
	}
}
