package selector

import (
	"fmt"
	"strconv"
	"strings"
)

// Inventory terms (issue 17) test what agents report about their hardware
// and software, which the relay keeps in its store, not in Attrs: Match
// ignores them, and whoever resolves a selector asks the store for the
// agents that meet [Selector.Inventory] and keeps those.
//
//	software=NAME             has a package NAME (case-insensitive; also in, !=, notin)
//	software.version<V        ... whose version is before V (also <=, >, >=, =, !=)
//	memory<8GiB               total memory (also <=, >, >=)
//	disk.free<10%             some disk has less than 10% free (<, <=); with >, >=: every disk
//	disk.free<10GiB           the same in bytes
//
// A software.version term narrows the software term before it: with
// "software=openssl,software.version<3.0.14" one package must match both.
// Without a software term before it, it is about any package. Versions
// compare in Debian order (1.0~rc1 < 1.0 < 1.0a < 1.0.1 < 1.0.10). Sizes
// take B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB
// (powers of 1000); no unit means bytes.

// Inventory condition kinds, as in [InvCond].
const (
	InvSoftware = "software"
	InvMemory   = "memory"
	InvDiskFree = "disk.free"
)

// VersionCmp is one comparison of a package's version.
type VersionCmp struct {
	Op      string // <, <=, >, >=, =, !=
	Version string
}

// InvCond is one inventory condition; an agent is selected when it meets
// all of them (and the other terms).
//
//   - InvSoftware: the agent has a package named one of Names (any name
//     when empty, compared case-insensitively) whose version satisfies
//     every Versions comparison; with Negate, it has no such package.
//   - InvMemory, InvDiskFree: the value Op Value, in bytes; for disk.free
//     the smallest free space of the agent's disks, in parts per million of
//     the disk's size when PPM.
type InvCond struct {
	Kind     string
	Names    []string
	Versions []VersionCmp
	Negate   bool
	Op       string
	Value    int64
	PPM      bool
}

var opText = map[op]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

func (f field) inventory() bool {
	return f == fieldSoftware || f == fieldSoftwareVersion || f == fieldMemory || f == fieldDiskFree
}

func (f field) ordered() bool {
	return f == fieldSoftwareVersion || f == fieldMemory || f == fieldDiskFree
}

// checkOp says why op cannot be used with f ("" when it can).
func (f field) checkOp(o op) string {
	switch f {
	case fieldSoftwareVersion:
		if o == opIn || o == opNotIn {
			return "software.version takes <, <=, >, >=, = or !=, not a list"
		}
	case fieldMemory, fieldDiskFree:
		if o < opLt {
			return fmt.Sprintf("%s takes <, <=, > or >=", f.name())
		}
	}
	return ""
}

func (f field) name() string {
	switch f {
	case fieldMemory:
		return "memory"
	case fieldDiskFree:
		return "disk.free"
	}
	return "software.version"
}

func (f field) valueChar() func(byte) bool {
	switch f {
	case fieldSoftware, fieldSoftwareVersion:
		return isPackageChar
	case fieldMemory, fieldDiskFree:
		return isSizeChar
	}
	return isValueChar
}

// isPackageChar accepts what package names and versions are made of
// (dpkg, rpm; Windows and macOS names without spaces).
func isPackageChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '_', '.', ':', '+', '~', '-', '@':
		return true
	}
	return false
}

func isSizeChar(c byte) bool { return isAlnum(c) || c == '.' || c == '%' }

// checkInvValue validates the value of an inventory term.
func checkInvValue(f field, v string) (string, string) {
	switch f {
	case fieldSoftware:
		if len(v) > 128 {
			return "", "package name longer than 128 characters"
		}
		return strings.ToLower(v), ""
	case fieldSoftwareVersion:
		if len(v) > 128 {
			return "", "version longer than 128 characters"
		}
		return v, ""
	case fieldDiskFree:
		if strings.HasSuffix(v, "%") {
			if _, err := parsePercent(v); err != nil {
				return "", err.Error()
			}
			return v, ""
		}
	}
	if _, err := ParseSize(v); err != nil {
		return "", err.Error()
	}
	return v, ""
}

// parsePercent returns "12.5%" in parts per million.
func parsePercent(v string) (int64, error) {
	n, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || n < 0 || n > 100 || strings.ContainsAny(v, "eE") {
		return 0, fmt.Errorf("percentage %q: want 0%% to 100%%, as in 10%%", v)
	}
	return int64(n * 10_000), nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseSize parses a size such as 8GiB, 512M, 1.5TB or 4096 into bytes.
func ParseSize(v string) (int64, error) {
	i := 0
	for i < len(v) && (isDigit(v[i]) || v[i] == '.') {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(v[i:])]
	n, err := strconv.ParseFloat(v[:i], 64)
	if !ok || err != nil || i == 0 || n*unit > 1<<62 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), as in 8GiB", v)
	}
	return int64(n * unit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// UsesInventory reports whether the selector has inventory terms, which
// the caller must resolve with [Selector.Inventory].
func (s *Selector) UsesInventory() bool {
	if s == nil {
		return false
	}
	for i := range s.terms {
		if s.terms[i].field.inventory() {
			return true
		}
	}
	return false
}

// Inventory returns the selector's inventory conditions, with each
// software.version term folded into the software term before it.
func (s *Selector) Inventory() []InvCond {
	if s == nil {
		return nil
	}
	var out []InvCond
	lastSoftware := -1
	for _, t := range s.terms {
		switch t.field {
		case fieldSoftware:
			out = append(out, InvCond{Kind: InvSoftware, Names: t.values, Negate: t.op == opNe || t.op == opNotIn})
			lastSoftware = len(out) - 1
		case fieldSoftwareVersion:
			cmp := VersionCmp{Op: opText[t.op], Version: t.values[0]}
			if lastSoftware < 0 {
				out = append(out, InvCond{Kind: InvSoftware})
				lastSoftware = len(out) - 1
			}
			out[lastSoftware].Versions = append(out[lastSoftware].Versions, cmp)
		case fieldMemory, fieldDiskFree:
			c := InvCond{Kind: InvMemory, Op: opText[t.op]}
			if t.field == fieldDiskFree {
				c.Kind = InvDiskFree
			}
			v := t.values[0]
			if strings.HasSuffix(v, "%") {
				c.Value, _ = parsePercent(v)
				c.PPM = true
			} else {
				c.Value, _ = ParseSize(v)
			}
			out = append(out, c)
		}
	}
	return out
}
