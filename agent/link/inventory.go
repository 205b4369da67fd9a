package link

import (
	"context"
	"maps"
	"net/netip"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/patchbay/patchbay/agent/inventory"
	"github.com/patchbay/patchbay/internal/wire"
)

// unknownHost is reported when the machine's host name cannot be read.
const unknownHost = "unknown"

// CollectInventory gathers this machine's inventory (agent/inventory) and
// adds the agent version and its own tags. It never fails; parts that
// cannot be read are left empty.
func CollectInventory(ctx context.Context, version string, tags map[string]string) wire.Inventory {
	inv := inventory.Collect(ctx)
	return wire.Inventory{
		Hostname:  inv.Hostname,
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		OSVersion: inv.OSVersion,
		Version:   version,
		Users:     inv.Users,
		IPs:       inv.IPs,
		Tags:      maps.Clone(tags),
		Hardware:  hardwareToWire(inv.Hardware),
		BootTime:  inv.BootTime,
	}
}

func hardwareToWire(h *inventory.Hardware) *wire.Hardware {
	if h == nil {
		return nil
	}
	w := &wire.Hardware{CPUModel: h.CPUModel, CPUCount: h.CPUCount, MemoryBytes: h.MemoryBytes,
		Vendor: h.Vendor, Model: h.Model, Serial: h.Serial, Firmware: h.Firmware}
	for _, d := range h.Disks {
		w.Disks = append(w.Disks, wire.Disk{Mount: d.Mount, Size: d.Size, Free: d.Free})
	}
	return w
}

// sanitizeHardware clips hardware to the wire's limits.
func sanitizeHardware(h *wire.Hardware) *wire.Hardware {
	if h == nil {
		return nil
	}
	out := &wire.Hardware{
		CPUModel: clip(h.CPUModel, wire.MaxFieldLen), CPUCount: max(0, min(h.CPUCount, 1<<16)), MemoryBytes: max(0, h.MemoryBytes),
		Vendor: clip(h.Vendor, wire.MaxFieldLen), Model: clip(h.Model, wire.MaxFieldLen),
		Serial: clip(h.Serial, wire.MaxFieldLen), Firmware: clip(h.Firmware, wire.MaxFieldLen),
	}
	for _, d := range h.Disks {
		if len(out.Disks) == wire.MaxDisks {
			break
		}
		d.Mount = clip(d.Mount, wire.MaxFieldLen)
		if d.Mount == "" || d.Size < 0 || d.Free < 0 || d.Free > d.Size {
			continue
		}
		out.Disks = append(out.Disks, d)
	}
	return out
}

// Sanitize clips an inventory to what the relay accepts (wire.Inventory's
// Validate): an agent on an odd machine (a host name with control
// characters, hundreds of addresses, a user name longer than 64 bytes) must
// still connect rather than be refused on every attempt. Invalid list
// entries and tags are dropped, long strings cut, control characters
// replaced.
func Sanitize(inv wire.Inventory) wire.Inventory {
	out := wire.Inventory{
		Hostname:  clip(inv.Hostname, 253),
		OS:        inv.OS,
		Arch:      inv.Arch,
		OSVersion: clip(inv.OSVersion, wire.MaxFieldLen),
		Version:   clip(inv.Version, wire.MaxFieldLen),
		Hardware:  sanitizeHardware(inv.Hardware),
		BootTime:  inv.BootTime,
	}
	if out.Hostname == "" {
		out.Hostname = unknownHost
	}
	probe := wire.Inventory{Hostname: out.Hostname, OS: out.OS, Arch: out.Arch}
	if probe.Validate() != nil {
		out.OS, out.Arch = runtime.GOOS, runtime.GOARCH
	}
	for _, u := range inv.Users {
		if len(out.Users) == wire.MaxListLen {
			break
		}
		if u = clip(u, 64); u != "" {
			out.Users = append(out.Users, u)
		}
	}
	for _, ip := range inv.IPs {
		if len(out.IPs) == wire.MaxListLen {
			break
		}
		if _, err := netip.ParseAddr(ip); err == nil {
			out.IPs = append(out.IPs, ip)
		}
	}
	for k, v := range inv.Tags {
		if len(out.Tags) == wire.MaxTags {
			break
		}
		if wire.ValidTag(k, v) == nil {
			if out.Tags == nil {
				out.Tags = make(map[string]string, len(inv.Tags))
			}
			out.Tags[k] = v
		}
	}
	return out
}

// clip makes s valid UTF-8 without control characters, at most n bytes,
// cut on a character boundary, with surrounding space trimmed.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut])
}
