package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxProcFile bounds what is read from one file below root.
const maxProcFile = 1 << 20

// statfsTimeout bounds statfs on one mount: a dead NFS server must not
// hang the report.
const statfsTimeout = 5 * time.Second

// collect fills r from the files below c.root (/proc/uptime, /proc/loadavg,
// /proc/meminfo, /proc/self/mounts, /var/run/reboot-required) and, when
// root is "/", from systemctl and needs-restarting. Uptime, load and memory
// are required: a missing or malformed file is an error. Disks, services
// and reboot are best effort: what cannot be read becomes a note.
func collect(ctx context.Context, c config, r *Report) error {
	r.OS = "linux"
	proc := filepath.Join(c.root, "proc")

	data, err := readFile(filepath.Join(proc, "uptime"))
	if err != nil {
		return err
	}
	up, err := parseUptime(data)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(proc, "uptime"), err)
	}
	r.UptimeSeconds = int64(up)

	if data, err = readFile(filepath.Join(proc, "loadavg")); err != nil {
		return err
	}
	load, err := parseLoadavg(data)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(proc, "loadavg"), err)
	}
	r.Load1, r.Load5, r.Load15 = float(load[0]), float(load[1]), float(load[2])

	if data, err = readFile(filepath.Join(proc, "meminfo")); err != nil {
		return err
	}
	if r.MemTotal, r.MemAvailable, err = parseMeminfo(data); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(proc, "meminfo"), err)
	}

	collectDisks(ctx, c, r)
	collectServices(ctx, c, r)
	collectReboot(ctx, c, r)
	return ctx.Err()
}

// collectDisks reports every real filesystem in the mount table, once per
// device (bind mounts and btrfs subvolumes share one), under its shortest
// mount point. Mount points are looked up below root.
func collectDisks(ctx context.Context, c config, r *Report) {
	var data []byte
	var err error
	for _, name := range []string{filepath.Join("self", "mounts"), "mounts"} {
		if data, err = readFile(filepath.Join(c.root, "proc", name)); err == nil {
			break
		}
	}
	if err != nil {
		r.note("disks: %v", err)
		return
	}
	mounts, err := parseMounts(data)
	if err != nil {
		r.note("disks: %s: %v", filepath.Join(c.root, "proc", "self", "mounts"), err)
		return
	}
	seen := map[string]int{} // device and type -> index in r.Disks
	for _, m := range mounts {
		if !realFS(m.fstype) {
			continue
		}
		d, err := statDisk(ctx, filepath.Join(c.root, m.point), m)
		if errors.Is(err, errNotDisk) {
			continue
		}
		if err != nil {
			r.note("disks: %v", err)
			continue
		}
		key := m.device + "\x00" + m.fstype
		if i, ok := seen[key]; ok {
			if len(d.Mount) < len(r.Disks[i].Mount) {
				r.Disks[i] = d
			}
			continue
		}
		seen[key] = len(r.Disks)
		r.Disks = append(r.Disks, d)
	}
}

// errNotDisk marks a mount point that is gone or is a file (Docker mounts
// /etc/hosts and friends one by one): not worth a note.
var errNotDisk = errors.New("not a mounted directory")

// statDisk measures the filesystem mounted at path, giving up after
// statfsTimeout (the blocked call is left behind; the plugin process ends
// with the job).
func statDisk(ctx context.Context, path string, m mount) (Disk, error) {
	type result struct {
		d   Disk
		err error
	}
	ch := make(chan result, 1)
	go func() {
		fi, err := os.Stat(path)
		if err != nil || !fi.IsDir() {
			ch <- result{err: errNotDisk}
			return
		}
		var st unix.Statfs_t
		if err := unix.Statfs(path, &st); err != nil {
			ch <- result{err: fmt.Errorf("statfs %s: %w", path, err)}
			return
		}
		bsize := uint64(st.Frsize)
		if bsize == 0 {
			bsize = uint64(st.Bsize)
		}
		ch <- result{d: newDisk(m.point, m.device, m.fstype, st.Blocks, st.Bfree, st.Bavail, bsize)}
	}()
	timer := time.NewTimer(statfsTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res.d, res.err
	case <-timer.C:
		return Disk{}, fmt.Errorf("statfs %s: no answer after %s", path, statfsTimeout)
	case <-ctx.Done():
		return Disk{}, ctx.Err()
	}
}

// collectServices lists failed systemd units with systemctl. With a
// sandbox root, without systemctl, or where systemd is not running (most
// containers) the list is unknown and ServicesNote says why.
func collectServices(ctx context.Context, c config, r *Report) {
	if c.sandbox {
		r.ServicesNote = "not checked (sandbox root)"
		return
	}
	path, ok := findTool("systemctl")
	if !ok {
		r.ServicesNote = "systemctl not installed"
		return
	}
	out, code, stderr, err := runTool(ctx, path, "--failed", "--no-legend", "--plain", "--no-pager")
	switch {
	case err != nil:
		r.ServicesNote = err.Error()
	case code != 0:
		r.ServicesNote = fmt.Sprintf("systemctl exited with status %d: %s", code, stderr)
	default:
		r.FailedServices, r.FailedServicesKnown = parseFailedUnits(out), true
	}
}

// collectReboot looks for Debian's /var/run/reboot-required (or
// /run/reboot-required) below root, then, with root "/", asks
// needs-restarting -r (RHEL) if it is installed.
func collectReboot(ctx context.Context, c config, r *Report) {
	for _, rel := range []string{"var/run/reboot-required", "run/reboot-required"} {
		fi, err := os.Stat(filepath.Join(c.root, rel))
		if err != nil || fi.IsDir() {
			continue
		}
		r.RebootPending, r.RebootReason = true, "/"+rel+" exists"
		if data, err := readFile(filepath.Join(c.root, rel+".pkgs")); err == nil {
			if pkgs := uniq(strings.Fields(string(data))); len(pkgs) > 0 {
				r.RebootReason += " (" + shortList(pkgs, 5) + ")"
			}
		}
		return
	}
	if c.sandbox {
		return
	}
	path, ok := findTool("needs-restarting")
	if !ok {
		return
	}
	out, code, stderr, err := runTool(ctx, path, "-r")
	switch {
	case err != nil:
		r.note("reboot: %v", err)
	case code == 1:
		r.RebootPending, r.RebootReason = true, "needs-restarting -r: reboot required"
		var items []string
		for _, line := range strings.Split(string(out), "\n") {
			if item, ok := strings.CutPrefix(strings.TrimSpace(line), "* "); ok {
				items = append(items, item)
			}
		}
		if len(items) > 0 {
			r.RebootReason += " (" + shortList(items, 5) + " updated)"
		}
	case code != 0:
		r.note("reboot: needs-restarting -r exited with status %d: %s", code, stderr)
	}
}

// readFile reads at most maxProcFile bytes of a file.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProcFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// shortList joins the first n items and says how many more there are.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// uniq drops repeated strings, keeping the first of each.
func uniq(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
