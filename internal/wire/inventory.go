package wire

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Inventory messages (issue 17). Hardware and the last boot travel in
// Inventory (hello and MsgInventory); the software list, which is large,
// travels in MsgSoftware only when its hash differs from the last one the
// relay acknowledged, gzip-compressed inside one Control frame.
const (
	MsgSoftware         = "software"          // agent -> relay: SoftwareReport
	MsgSoftwareAck      = "software_ack"      // relay -> agent: SoftwareAck
	MsgInventoryRefresh = "inventory_refresh" // relay -> agent: InventoryRefresh
)

// Software limits. A report beyond them is refused as a whole.
const (
	MaxPackages       = 20000
	MaxPackageName    = 128
	MaxPackageVersion = 128
	MaxPackageSource  = 16
	MaxDisks          = 64
	// maxSoftwareJSON bounds the decompressed package list, so that a small
	// compressed body cannot expand without limit.
	maxSoftwareJSON = 8 << 20
)

// Hardware is what an agent knows about its machine's hardware. Unknown
// fields are zero.
type Hardware struct {
	CPUModel    string `json:"cpu_model,omitempty"`
	CPUCount    int    `json:"cpu_count,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Model       string `json:"model,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Firmware    string `json:"firmware,omitempty"` // BIOS/UEFI version
	Disks       []Disk `json:"disks,omitempty"`
}

// Disk is one mounted file system.
type Disk struct {
	Mount string `json:"mount"`
	Size  int64  `json:"size"`
	Free  int64  `json:"free"`
}

// Validate bounds every field.
func (h *Hardware) Validate() error {
	for name, s := range map[string]string{"cpu_model": h.CPUModel, "vendor": h.Vendor, "model": h.Model, "serial": h.Serial, "firmware": h.Firmware} {
		if len(s) > MaxFieldLen || !printable(s) {
			return fmt.Errorf("hardware %s must be at most %d printable characters", name, MaxFieldLen)
		}
	}
	if h.CPUCount < 0 || h.CPUCount > 1<<16 || h.MemoryBytes < 0 {
		return fmt.Errorf("hardware cpu_count %d or memory_bytes %d out of range", h.CPUCount, h.MemoryBytes)
	}
	if len(h.Disks) > MaxDisks {
		return fmt.Errorf("%d disks, at most %d", len(h.Disks), MaxDisks)
	}
	for _, d := range h.Disks {
		if d.Mount == "" || len(d.Mount) > MaxFieldLen || !printable(d.Mount) {
			return fmt.Errorf("disk mount %q must be 1-%d printable characters", d.Mount, MaxFieldLen)
		}
		if d.Size < 0 || d.Free < 0 || d.Free > d.Size {
			return fmt.Errorf("disk %s: size %d and free %d out of range", d.Mount, d.Size, d.Free)
		}
	}
	return nil
}

// Package is one installed piece of software. Source says where it was
// found: dpkg, rpm, registry (Windows), app (macOS) or test.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Source  string `json:"source,omitempty"`
}

// SoftwareReport carries a whole software list. Gzip is the gzip-compressed
// JSON array of Package, sorted and distinct (see SortPackages); Hash is
// SoftwareHash of that list and Count its length.
type SoftwareReport struct {
	Hash  string `json:"hash"`
	Count int    `json:"count"`
	Gzip  []byte `json:"gzip"`
}

// SoftwareAck answers a SoftwareReport. Error, when set, says why the relay
// refused the report; the agent does not send the same list again.
type SoftwareAck struct {
	Hash  string `json:"hash"`
	Error string `json:"error,omitempty"`
}

// InventoryRefresh asks the agent to collect and report its inventory now,
// software included even when unchanged.
type InventoryRefresh struct{}

// ErrSoftwareReport is wrapped by every DecodeSoftware error.
var ErrSoftwareReport = errors.New("software report refused")

// SortPackages sorts by name, version and source and drops duplicates.
func SortPackages(p []Package) []Package {
	slices.SortFunc(p, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return slices.Compact(p)
}

// SoftwareHash is the hex SHA-256 of a sorted package list.
func SoftwareHash(p []Package) string {
	h := sha256.New()
	for _, pk := range p {
		h.Write([]byte(pk.Name))
		h.Write([]byte{0})
		h.Write([]byte(pk.Version))
		h.Write([]byte{0})
		h.Write([]byte(pk.Source))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ValidPackage checks one package against the limits.
func ValidPackage(p Package) error {
	if p.Name == "" || len(p.Name) > MaxPackageName || !printable(p.Name) {
		return fmt.Errorf("package name %q must be 1-%d printable characters", clipQ(p.Name), MaxPackageName)
	}
	if len(p.Version) > MaxPackageVersion || !printable(p.Version) {
		return fmt.Errorf("package %s: version must be at most %d printable characters", p.Name, MaxPackageVersion)
	}
	if len(p.Source) > MaxPackageSource || p.Source != "" && !tokenRE.MatchString(p.Source) {
		return fmt.Errorf("package %s: source %q must be at most %d of [A-Za-z0-9_.-]", p.Name, clipQ(p.Source), MaxPackageSource)
	}
	return nil
}

func clipQ(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// EncodeSoftware builds a report from a list that passes ValidPackage,
// sorting it first.
func EncodeSoftware(p []Package) (SoftwareReport, error) {
	p = SortPackages(slices.Clone(p))
	if len(p) > MaxPackages {
		return SoftwareReport{}, fmt.Errorf("%w: %d packages, at most %d", ErrSoftwareReport, len(p), MaxPackages)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return SoftwareReport{}, err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return SoftwareReport{}, err
	}
	return SoftwareReport{Hash: SoftwareHash(p), Count: len(p), Gzip: b.Bytes()}, nil
}

// DecodeSoftware checks a report (untrusted) and returns its packages,
// sorted and distinct. Every error wraps ErrSoftwareReport and says what is
// wrong: too many packages, a field too long, a hash that does not match.
func DecodeSoftware(r SoftwareReport) ([]Package, error) {
	fail := func(format string, args ...any) ([]Package, error) {
		return nil, fmt.Errorf("%w: %s", ErrSoftwareReport, fmt.Sprintf(format, args...))
	}
	if r.Count < 0 || r.Count > MaxPackages {
		return fail("%d packages, at most %d are accepted", r.Count, MaxPackages)
	}
	if len(r.Hash) != 64 {
		return fail("hash must be 64 hex digits")
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Gzip))
	if err != nil {
		return fail("package list is not gzip data: %v", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxSoftwareJSON+1))
	if err != nil {
		return fail("package list: %v", err)
	}
	if len(raw) > maxSoftwareJSON {
		return fail("package list larger than %d bytes uncompressed", maxSoftwareJSON)
	}
	var p []Package
	if err := strictUnmarshal(raw, &p); err != nil {
		return fail("package list: %v", err)
	}
	if len(p) != r.Count {
		return fail("count %d but %d packages", r.Count, len(p))
	}
	for _, pk := range p {
		if err := ValidPackage(pk); err != nil {
			return fail("%v", err)
		}
	}
	p = SortPackages(p)
	if got := SoftwareHash(p); got != r.Hash {
		return fail("hash %s does not match the list (%s)", clipQ(r.Hash), got)
	}
	if p == nil {
		p = []Package{}
	}
	return p, nil
}

// Validate bounds the report before it is decompressed: it must fit in
// one Control frame.
func (r *SoftwareReport) Validate() error {
	if base64.StdEncoding.EncodedLen(len(r.Gzip)) > MaxControl-256 {
		return fmt.Errorf("software report larger than %d bytes", MaxControl)
	}
	return nil
}

// Validate checks the ack.
func (a *SoftwareAck) Validate() error {
	if len(a.Hash) > 64 || len(a.Error) > 1024 {
		return errors.New("software ack: hash or error too long")
	}
	return nil
}
