package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Hardware is an agent's reported hardware (issue 17). Zero fields are
// unknown.
type Hardware struct {
	CPUModel    string `json:"cpu_model,omitempty"`
	CPUCount    int    `json:"cpu_count,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Model       string `json:"model,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Firmware    string `json:"firmware,omitempty"`
	Disks       []Disk `json:"disks,omitempty"`
}

// Disk is one mounted file system of an agent.
type Disk struct {
	Mount string `json:"mount"`
	Size  int64  `json:"size"`
	Free  int64  `json:"free"`
}

// HardwareReport is one agent's hardware and last boot, as received.
type HardwareReport struct {
	AgentID  string
	Hardware Hardware
	BootTime time.Time
	At       time.Time
}

// Package is one installed piece of software.
type Package struct {
	Name, Version, Source string
}

// Software change kinds in the history.
const (
	ChangeInstalled = "installed"
	ChangeRemoved   = "removed"
	ChangeUpgraded  = "upgraded" // or downgraded: the version changed
)

// SoftwareChange is one entry of an agent's software history.
type SoftwareChange struct {
	AgentID    string
	At         time.Time
	Change     string
	Name       string
	OldVersion string
	NewVersion string
	Source     string
}

// InventoryInfo is what the store holds about an agent's inventory.
type InventoryInfo struct {
	AgentID       string
	Hardware      Hardware
	BootTime      time.Time
	UpdatedAt     time.Time // hardware last changed
	SoftwareHash  string
	SoftwareCount int
	SoftwareAt    time.Time // software list last changed
}

// hardwareHash digests everything PutHardware writes but the time.
func hardwareHash(r HardwareReport) string {
	b, _ := json.Marshal(struct {
		H Hardware
		B int64
	}{r.Hardware, bootUnix(r.BootTime)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func bootUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// minFree returns the smallest free space over disks, in bytes and in
// parts per million of the disk's size; nil without disks.
func minFree(disks []Disk) (bytes, ppm any) {
	var mb, mp int64 = -1, -1
	for _, d := range disks {
		if d.Size <= 0 {
			continue
		}
		p := d.Free * 1_000_000 / d.Size
		if d.Free > 1<<43 { // avoid overflow: compute in float for huge disks
			p = int64(float64(d.Free) / float64(d.Size) * 1_000_000)
		}
		if mb < 0 || d.Free < mb {
			mb = d.Free
		}
		if mp < 0 || p < mp {
			mp = p
		}
	}
	if mb < 0 {
		return nil, nil
	}
	return mb, mp
}

// PutHardware stores a batch of hardware reports in one transaction, in
// agent ID order. A report equal to the stored one writes nothing (the
// upsert's WHERE compares digests).
func (s *Store) PutHardware(ctx context.Context, reports []HardwareReport) error {
	if len(reports) == 0 {
		return nil
	}
	reports = slices.Clone(reports)
	slices.SortStableFunc(reports, func(a, b HardwareReport) int { return strings.Compare(a.AgentID, b.AgentID) })
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range reports {
			h := r.Hardware
			disks, err := json.Marshal(h.Disks)
			if err != nil {
				return err
			}
			if h.Disks == nil {
				disks = []byte("[]")
			}
			mb, mp := minFree(h.Disks)
			at := r.At
			if at.IsZero() {
				at = time.Now()
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO agent_hardware
				(agent_id, cpu_model, cpu_count, memory_bytes, vendor, model, serial, firmware, disks,
				 disk_min_free, disk_min_free_ppm, boot_time, hash, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
				ON CONFLICT (agent_id) DO UPDATE SET cpu_model = excluded.cpu_model, cpu_count = excluded.cpu_count,
				 memory_bytes = excluded.memory_bytes, vendor = excluded.vendor, model = excluded.model,
				 serial = excluded.serial, firmware = excluded.firmware, disks = excluded.disks,
				 disk_min_free = excluded.disk_min_free, disk_min_free_ppm = excluded.disk_min_free_ppm,
				 boot_time = excluded.boot_time, hash = excluded.hash, updated_at = excluded.updated_at
				WHERE agent_hardware.hash <> excluded.hash`,
				r.AgentID, h.CPUModel, h.CPUCount, h.MemoryBytes, h.Vendor, h.Model, h.Serial, h.Firmware, string(disks),
				mb, mp, dbTime(r.BootTime), hardwareHash(r), dbTime(at))
			if err != nil {
				return fmt.Errorf("agent %s: %w", r.AgentID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store hardware: %w", err)
	}
	return nil
}

// StoredSoftwareHash returns the hash of the software list stored for an
// agent, "" when none is.
func (s *Store) StoredSoftwareHash(ctx context.Context, agentID string) (string, error) {
	var h string
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT software_hash FROM agent_hardware WHERE agent_id = $1`, agentID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("software hash of agent %s: %w", agentID, err)
	}
	return h, nil
}

type pkgKey struct{ name, source string }

// diffSoftware compares the stored list with the new one. A name (and
// source) with exactly one version before and one other after is an
// upgrade; anything else is installed or removed per version.
func diffSoftware(agentID string, old, cur []Package, at time.Time) (add, del []Package, changes []SoftwareChange) {
	inOld := map[Package]bool{}
	for _, p := range old {
		inOld[p] = true
	}
	inCur := map[Package]bool{}
	for _, p := range cur {
		inCur[p] = true
	}
	for _, p := range cur {
		if !inOld[p] {
			add = append(add, p)
		}
	}
	for _, p := range old {
		if !inCur[p] {
			del = append(del, p)
		}
	}
	oldN, curN := map[pkgKey]int{}, map[pkgKey]int{}
	for _, p := range old {
		oldN[pkgKey{p.Name, p.Source}]++
	}
	for _, p := range cur {
		curN[pkgKey{p.Name, p.Source}]++
	}
	removed := map[pkgKey]Package{}
	for _, p := range del {
		k := pkgKey{p.Name, p.Source}
		if oldN[k] == 1 && curN[k] == 1 {
			removed[k] = p
			continue
		}
		changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeRemoved, Name: p.Name, OldVersion: p.Version, Source: p.Source})
	}
	for _, p := range add {
		k := pkgKey{p.Name, p.Source}
		if o, ok := removed[k]; ok {
			changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeUpgraded, Name: p.Name, OldVersion: o.Version, NewVersion: p.Version, Source: p.Source})
			continue
		}
		changes = append(changes, SoftwareChange{AgentID: agentID, At: at, Change: ChangeInstalled, Name: p.Name, NewVersion: p.Version, Source: p.Source})
	}
	slices.SortFunc(changes, func(a, b SoftwareChange) int { return strings.Compare(a.Name, b.Name) })
	return add, del, changes
}

// softwareBatch is the rows per multi-row INSERT (6 parameters each).
const softwareBatch = 500

// SoftwareList is one agent's software list (sorted, distinct) and its
// hash, as PutSoftware takes it.
type SoftwareList struct {
	AgentID string
	Hash    string
	Pkgs    []Package
}

// PutSoftware stores an agent's software list (sorted, distinct) with its
// hash: in one transaction it diffs the list against the stored one,
// deletes and inserts only what differs and appends the changes to the
// history. When hash equals the stored hash it writes nothing and returns
// 0. It returns the number of changes recorded. An agent's first list is
// its baseline: stored, with no history (28 million "installed" rows for
// a fleet's first round would say nothing).
func (s *Store) PutSoftware(ctx context.Context, agentID, hash string, pkgs []Package, at time.Time) (int, error) {
	n, err := s.PutSoftwareBatch(ctx, []SoftwareList{{AgentID: agentID, Hash: hash, Pkgs: pkgs}}, at)
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// PutSoftwareBatch is PutSoftware for several agents in one transaction
// (in agent ID order): the relay's writer takes what queued up while it
// was storing, so that a fleet reporting at once shares the index pages
// each list touches (one per package name) instead of writing them once
// per agent. Lists whose hash is the stored one are skipped before the
// transaction. It returns the changes recorded for each list, in order.
func (s *Store) PutSoftwareBatch(ctx context.Context, lists []SoftwareList, at time.Time) ([]int, error) {
	counts := make([]int, len(lists))
	if at.IsZero() {
		at = time.Now()
	}
	var todo []int
	for i, l := range lists {
		old, err := s.StoredSoftwareHash(ctx, l.AgentID)
		if err != nil {
			return nil, err
		}
		if old != l.Hash || l.Hash == "" {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return counts, nil
	}
	slices.SortStableFunc(todo, func(a, b int) int { return strings.Compare(lists[a].AgentID, lists[b].AgentID) })
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, i := range todo {
			n, err := s.putSoftwareTx(ctx, tx, lists[i].AgentID, lists[i].Hash, lists[i].Pkgs, at)
			if err != nil {
				return fmt.Errorf("agent %s: %w", lists[i].AgentID, err)
			}
			counts[i] = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store software: %w", err)
	}
	return counts, nil
}

func (s *Store) putSoftwareTx(ctx context.Context, tx *sql.Tx, agentID, hash string, pkgs []Package, at time.Time) (int, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO agent_hardware (agent_id) VALUES ($1) ON CONFLICT (agent_id) DO NOTHING`, agentID); err != nil {
		return 0, err
	}
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE" // one writer per agent at a time
	}
	var stored string
	if err := tx.QueryRowContext(ctx, `SELECT software_hash FROM agent_hardware WHERE agent_id = $1`+lock, agentID).Scan(&stored); err != nil {
		return 0, err
	}
	if stored == hash && hash != "" {
		return 0, nil
	}
	old, err := listSoftware(ctx, tx, agentID)
	if err != nil {
		return 0, err
	}
	add, del, changes := diffSoftware(agentID, old, pkgs, at)
	if len(old) == 0 && stored == "" {
		changes = nil // an agent's first list is its baseline, not a change
	}
	for _, p := range del {
		if _, err := tx.ExecContext(ctx, `DELETE FROM agent_software WHERE agent_id = $1 AND name = $2 AND version = $3 AND source = $4`,
			agentID, p.Name, p.Version, p.Source); err != nil {
			return 0, err
		}
	}
	for chunk := range slices.Chunk(add, softwareBatch) {
		var l argList
		var b strings.Builder
		b.WriteString(`INSERT INTO agent_software (agent_id, name, version, source, name_key, version_key) VALUES `)
		for i, p := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%s,%s,%s,%s,%s,%s)", l.add(agentID), l.add(p.Name), l.add(p.Version), l.add(p.Source),
				l.add(strings.ToLower(p.Name)), l.add(VersionKey(p.Version)))
		}
		if _, err := tx.ExecContext(ctx, b.String(), l.args...); err != nil {
			return 0, err
		}
	}
	for chunk := range slices.Chunk(changes, softwareBatch) {
		var l argList
		var b strings.Builder
		b.WriteString(`INSERT INTO agent_software_history (agent_id, at, change, name, old_version, new_version, source) VALUES `)
		for i, c := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%s,%s,%s,%s,%s,%s,%s)", l.add(agentID), l.add(dbTime(c.At)), l.add(c.Change), l.add(c.Name),
				l.add(c.OldVersion), l.add(c.NewVersion), l.add(c.Source))
		}
		if _, err := tx.ExecContext(ctx, b.String(), l.args...); err != nil {
			return 0, err
		}
	}
	softwareAt := "software_at"
	args := []any{hash, len(pkgs), agentID}
	if len(add) > 0 || len(del) > 0 || stored == "" {
		softwareAt = "$4"
		args = append(args, dbTime(at))
	}
	_, err = tx.ExecContext(ctx, `UPDATE agent_hardware SET software_hash = $1, software_count = $2, software_at = `+softwareAt+` WHERE agent_id = $3`, args...)
	return len(changes), err
}

func listSoftware(ctx context.Context, q readQuerier, agentID string) ([]Package, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, version, source FROM agent_software WHERE agent_id = $1 ORDER BY name, version, source`, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		var p Package
		if err := rows.Scan(&p.Name, &p.Version, &p.Source); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ListSoftware returns an agent's stored software, sorted by name.
func (s *Store) ListSoftware(ctx context.Context, agentID string) ([]Package, error) {
	p, err := listSoftware(ctx, s.reader(ctx), agentID)
	if err != nil {
		return nil, fmt.Errorf("list software of agent %s: %w", agentID, err)
	}
	return p, nil
}

// GetInventory returns what is stored about an agent's inventory;
// ErrNotFound when nothing is.
func (s *Store) GetInventory(ctx context.Context, agentID string) (InventoryInfo, error) {
	var (
		inv               InventoryInfo
		disks             string
		boot, upd, swAt   sql.NullTime
		cpuCount, swCount int
	)
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT cpu_model, cpu_count, memory_bytes, vendor, model, serial, firmware, disks,
		boot_time, updated_at, software_hash, software_count, software_at FROM agent_hardware WHERE agent_id = $1`, agentID).Scan(
		&inv.Hardware.CPUModel, &cpuCount, &inv.Hardware.MemoryBytes, &inv.Hardware.Vendor, &inv.Hardware.Model,
		&inv.Hardware.Serial, &inv.Hardware.Firmware, &disks, &boot, &upd, &inv.SoftwareHash, &swCount, &swAt)
	if errors.Is(err, sql.ErrNoRows) {
		return InventoryInfo{}, ErrNotFound
	}
	if err != nil {
		return InventoryInfo{}, fmt.Errorf("inventory of agent %s: %w", agentID, err)
	}
	if err := json.Unmarshal([]byte(disks), &inv.Hardware.Disks); err != nil {
		return InventoryInfo{}, fmt.Errorf("inventory of agent %s: disks: %w", agentID, err)
	}
	inv.AgentID, inv.Hardware.CPUCount, inv.SoftwareCount = agentID, cpuCount, swCount
	inv.BootTime, inv.UpdatedAt, inv.SoftwareAt = fromNull(boot), fromNull(upd), fromNull(swAt)
	return inv, nil
}

// SoftwareHistory returns an agent's software changes, newest first, at
// most limit.
func (s *Store) SoftwareHistory(ctx context.Context, agentID string, limit int) ([]SoftwareChange, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT at, change, name, old_version, new_version, source
		FROM agent_software_history WHERE agent_id = $1 ORDER BY at DESC, name LIMIT $2`, agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("software history of agent %s: %w", agentID, err)
	}
	defer rows.Close()
	out := []SoftwareChange{}
	for rows.Next() {
		c := SoftwareChange{AgentID: agentID}
		var at sql.NullTime
		if err := rows.Scan(&at, &c.Change, &c.Name, &c.OldVersion, &c.NewVersion, &c.Source); err != nil {
			return nil, fmt.Errorf("software history of agent %s: %w", agentID, err)
		}
		c.At = fromNull(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
