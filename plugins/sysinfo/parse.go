package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The parsers below read the text the Linux kernel and a few tools print.
// They are plain functions of their input so the tests can feed them
// malformed text on any OS; errors say what was wrong, without the file
// name (the caller adds it).

// parseUptime parses /proc/uptime ("350735.47 234388.90") into seconds.
func parseUptime(data []byte) (float64, error) {
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	return parseNonNegative(f[0])
}

// parseLoadavg parses /proc/loadavg ("0.52 0.58 0.59 1/234 5678").
func parseLoadavg(data []byte) ([3]float64, error) {
	var l [3]float64
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return l, fmt.Errorf("%q: want three load averages", strings.TrimSpace(string(data)))
	}
	for i := range l {
		v, err := parseNonNegative(f[i])
		if err != nil {
			return l, err
		}
		l[i] = v
	}
	return l, nil
}

// parseMeminfo parses /proc/meminfo and returns the total and available
// memory in bytes. Kernels older than 3.14 have no MemAvailable; it is
// then estimated as MemFree + Buffers + Cached.
func parseMeminfo(data []byte) (total, available uint64, err error) {
	kb := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		key, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return 0, 0, fmt.Errorf("line %d: %q: want \"Name: value kB\"", n, line)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("line %d: %q: bad number", n, line)
		}
		kb[key] = v
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	t, ok := kb["MemTotal"]
	if !ok || t == 0 {
		return 0, 0, errors.New("no MemTotal")
	}
	a, ok := kb["MemAvailable"]
	if !ok {
		a = kb["MemFree"] + kb["Buffers"] + kb["Cached"]
	}
	return t * 1024, min(a, t) * 1024, nil
}

// mount is one line of /proc/self/mounts.
type mount struct {
	device, point, fstype string
}

// parseMounts parses /proc/self/mounts, undoing the octal escapes the
// kernel writes for spaces, tabs, newlines and backslashes in paths.
func parseMounts(data []byte) ([]mount, error) {
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: %q: want device, mount point and type", n, line)
		}
		point, err := unescapeOctal(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !strings.HasPrefix(point, "/") {
			return nil, fmt.Errorf("line %d: mount point %q is not absolute", n, point)
		}
		ms = append(ms, mount{device: f[0], point: point, fstype: f[2]})
	}
	return ms, sc.Err()
}

// unescapeOctal turns "\040" sequences back into bytes.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("%q: truncated escape", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("%q: bad escape %q", s, s[i:i+4])
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// newDisk computes a disk's usage the way df does: used is what is not
// free, and the percentage is of what a user can have (used + available),
// rounded up.
func newDisk(point, device, fstype string, blocks, bfree, bavail, bsize uint64) Disk {
	d := Disk{Mount: point, Device: device, FSType: fstype, Total: blocks * bsize}
	if bfree <= blocks {
		d.Used = (blocks - bfree) * bsize
	}
	d.Available = bavail * bsize
	if sum := d.Used + d.Available; sum > 0 {
		d.Percent = int((d.Used*100 + sum - 1) / sum)
	}
	return d
}

// parseFailedUnits parses `systemctl --failed --no-legend --plain`: one
// unit per line, its name first (after a "●" on systemd versions that
// print one anyway).
func parseFailedUnits(data []byte) []string {
	units := []string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "●" || f[0] == "*") {
			f = f[1:]
		}
		if len(f) > 0 && strings.Contains(f[0], ".") {
			units = append(units, f[0])
		}
	}
	return units
}

// parseVMStat parses macOS's vm_stat and returns the available memory in
// bytes: free, inactive and speculative pages, which the system hands out
// without swapping.
func parseVMStat(data []byte) (uint64, error) {
	lines := strings.Split(string(data), "\n")
	const header = "(page size of "
	i := strings.Index(lines[0], header)
	if i < 0 {
		return 0, fmt.Errorf("first line %q: no page size", lines[0])
	}
	size, _, _ := strings.Cut(lines[0][i+len(header):], " ")
	pageSize, err := strconv.ParseUint(size, 10, 64)
	if err != nil || pageSize == 0 {
		return 0, fmt.Errorf("first line %q: bad page size", lines[0])
	}
	var pages uint64
	found := 0
	for _, line := range lines[1:] {
		key, val, ok := strings.Cut(line, ":")
		switch strings.TrimSpace(key) {
		case "Pages free", "Pages inactive", "Pages speculative":
		default:
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), "."), 10, 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("%q: bad number", line)
		}
		pages += n
		found++
	}
	if found == 0 {
		return 0, errors.New("no \"Pages free\" line")
	}
	return pages * pageSize, nil
}

// parseNonNegative parses a finite, non-negative decimal number.
func parseNonNegative(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	return v, nil
}
