package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hardware is what an agent finds out about its machine (issue 17). Zero
// fields are unknown.
type Hardware struct {
	CPUModel    string
	CPUCount    int   // logical CPUs
	MemoryBytes int64 // total
	Vendor      string
	Model       string
	Serial      string // often readable by root only
	Firmware    string // BIOS/UEFI version
	Disks       []Disk
}

// Disk is one mounted file system backed by a block device.
type Disk struct {
	Mount      string
	Size, Free int64 // bytes; Free is what an unprivileged user may use
}

// maxDisks bounds the disks reported (the wire's limit).
const maxDisks = 64

// parseCPUInfo returns the model name and the number of processors in
// /proc/cpuinfo (x86 "model name"; ARM "Hardware", "Model" or "CPU part").
func parseCPUInfo(data []byte) (model string, count int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			count++
		case "model name", "Hardware", "Model", "cpu model":
			if model == "" {
				model = v
			}
		}
	}
	return model, count
}

// parseMemInfo returns MemTotal from /proc/meminfo in bytes.
func parseMemInfo(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo: MemTotal %q: %w", f[1], err)
			}
			if len(f) >= 3 && strings.EqualFold(f[2], "kB") {
				n *= 1024
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("meminfo: no MemTotal line")
}

// parseBootTime returns the boot time from the btime line of /proc/stat.
func parseBootTime(data []byte) (time.Time, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "btime" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n <= 0 {
				return time.Time{}, fmt.Errorf("/proc/stat: btime %q is not a time", f[1])
			}
			return time.Unix(n, 0).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("/proc/stat: no btime line")
}

// parseMounts returns the mount points of block devices in /proc/mounts,
// one per device (the first: bind mounts repeat it), without read-only
// image file systems (squashfs, iso9660). Octal escapes (\040) are decoded.
func parseMounts(data []byte) []string {
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], "/dev/") || seen[f[0]] {
			continue
		}
		switch f[2] {
		case "squashfs", "iso9660", "udf", "erofs":
			continue
		}
		seen[f[0]] = true
		out = append(out, unescapeMount(f[1]))
		if len(out) == maxDisks {
			break
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
