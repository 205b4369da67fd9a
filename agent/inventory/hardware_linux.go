//go:build linux

package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// hardware reads /proc/cpuinfo, /proc/meminfo, /proc/mounts (with
// statfs(2) of each mount point under Root) and /sys/class/dmi/id (vendor,
// model, serial, BIOS version; the serial is readable by root only).
// Missing parts are left zero; all missing is an error.
func (c *Collector) hardware(context.Context) (*Hardware, error) {
	var h Hardware
	var errs []error
	if data, err := os.ReadFile(c.path("/proc/cpuinfo")); err != nil {
		errs = append(errs, err)
	} else {
		h.CPUModel, h.CPUCount = parseCPUInfo(data)
	}
	if h.CPUCount == 0 {
		h.CPUCount = runtime.NumCPU()
	}
	if data, err := os.ReadFile(c.path("/proc/meminfo")); err != nil {
		errs = append(errs, err)
	} else if h.MemoryBytes, err = parseMemInfo(data); err != nil {
		errs = append(errs, err)
	}
	dmi := func(name string) string {
		data, err := os.ReadFile(c.path("/sys/class/dmi/id/" + name))
		if err != nil {
			return "" // absent in containers and on most ARM boards; root-only for serials
		}
		return strings.TrimSpace(string(data))
	}
	h.Vendor, h.Model, h.Serial, h.Firmware = dmi("sys_vendor"), dmi("product_name"), dmi("product_serial"), dmi("bios_version")
	if data, err := os.ReadFile(c.path("/proc/mounts")); err != nil {
		errs = append(errs, err)
	} else {
		for _, m := range parseMounts(data) {
			var st syscall.Statfs_t
			if err := syscall.Statfs(c.path(m), &st); err != nil {
				continue // a mount we may not read
			}
			bs := int64(st.Bsize)
			h.Disks = append(h.Disks, Disk{Mount: m, Size: int64(st.Blocks) * bs, Free: min(int64(st.Bavail)*bs, int64(st.Blocks)*bs)})
		}
	}
	if len(errs) == 3 {
		return &h, fmt.Errorf("hardware: %w", errors.Join(errs...))
	}
	return &h, nil
}

// bootTime reads btime from /proc/stat.
func (c *Collector) bootTime() (time.Time, error) {
	data, err := os.ReadFile(c.path("/proc/stat"))
	if err != nil {
		return time.Time{}, err
	}
	return parseBootTime(data)
}

// software asks dpkg-query and rpm, whichever are installed.
func (c *Collector) software(ctx context.Context) ([]Package, error) {
	var pkgs []Package
	var errs []error
	found := false
	for _, tool := range []string{"dpkg-query", "rpm"} {
		if c.run == nil {
			if _, err := exec.LookPath(tool); err != nil {
				continue
			}
		}
		found = true
		var out []byte
		var err error
		if tool == "dpkg-query" {
			out, err = c.slowCommand(ctx, "dpkg-query", "-W", "-f="+dpkgFormat)
		} else {
			out, err = c.slowCommand(ctx, "rpm", "-qa", "--queryformat", rpmFormat)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", tool, err))
			continue
		}
		if tool == "dpkg-query" {
			pkgs = append(pkgs, parseDpkg(out, "dpkg")...)
		} else {
			pkgs = append(pkgs, parseRPM(out)...)
		}
	}
	if !found {
		return nil, errors.New("software: neither dpkg-query nor rpm is installed")
	}
	if len(pkgs) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("software: %w", errors.Join(errs...))
	}
	return pkgs, nil
}
