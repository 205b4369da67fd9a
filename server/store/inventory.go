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
