// Package checks runs an agent's policies (issue 17): each policy's check on
// its own interval, also while the relay is unreachable, results queued in
// the data directory until the relay acknowledges them, and self-heal: a
// failing check whose policy names a fix asks the relay for the fix, which
// arrives as an ordinary run (the same verified runner, journal, runs and
// audit log as a person's fix), and is checked again once it ran.
package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// Built-in checks, as policies name them.
const (
	BuiltinDiskSpace     = "builtin:disk-space"        // path, min_free_pct, min_free_bytes
	BuiltinDirSize       = "builtin:dir-size"          // path, max_bytes: a cache or spool directory grown too large
	BuiltinServiceDown   = "builtin:service-down"      // unit (systemd)
	BuiltinPendingReboot = "builtin:pending-reboot"    // path (default /var/run/reboot-required)
	BuiltinPrintQueue    = "builtin:stuck-print-queue" // queue, max_age (default 30m), cups_server
	BuiltinCertExpiry    = "builtin:cert-expiry"       // path and/or host (HOST:PORT), days (default 30), timeout
)

// Builtins lists the built-in checks and their parameters (for --help and
// the relay's validation, which reads the same list from internal/wire).
var Builtins = wire.BuiltinChecks

// errUnsupported: the check does not exist on this OS.
var errUnsupported = errors.New("not available on this operating system")

// RunBuiltin runs a built-in check: state is wire.CheckPassed,
// wire.CheckFailed or wire.CheckError, summary says what it found.
func RunBuiltin(ctx context.Context, name string, params map[string]string) (state, summary string) {
	var (
		ok  bool
		err error
	)
	switch name {
	case BuiltinDiskSpace:
		ok, summary, err = diskSpace(params)
	case BuiltinDirSize:
		ok, summary, err = dirSize(ctx, params)
	case BuiltinServiceDown:
		ok, summary, err = serviceActive(ctx, params["unit"])
	case BuiltinPendingReboot:
		ok, summary, err = pendingReboot(params)
	case BuiltinPrintQueue:
		ok, summary, err = printQueue(ctx, params)
	case BuiltinCertExpiry:
		ok, summary, err = certExpiry(ctx, params, time.Now())
	default:
		err = fmt.Errorf("unknown check %q: this agent knows %s", name, strings.Join(builtinNames(), ", "))
	}
	if err != nil {
		return wire.CheckError, clipSummary(fmt.Sprintf("%s: %v", name, err))
	}
	if ok {
		return wire.CheckPassed, clipSummary(summary)
	}
	return wire.CheckFailed, clipSummary(summary)
}

func builtinNames() []string {
	names := slices.Collect(maps.Keys(Builtins))
	slices.Sort(names)
	return names
}

func clipSummary(s string) string {
	if len(s) > wire.MaxCheckSummary {
		s = s[:wire.MaxCheckSummary]
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s), "?")
}

// diskSpace passes while the file system holding path has at least
// min_free_pct percent (threshold is the same) and min_free_bytes free.
func diskSpace(p map[string]string) (bool, string, error) {
	path := p["path"]
	if path == "" {
		path = defaultMount
	}
	pctS := p["min_free_pct"]
	if pctS == "" {
		pctS = strings.TrimSuffix(p["threshold"], "%")
	}
	var minPct float64
	var minBytes uint64
	var err error
	if pctS != "" {
		if minPct, err = strconv.ParseFloat(pctS, 64); err != nil || minPct < 0 || minPct > 100 {
			return false, "", fmt.Errorf("min_free_pct %q: want a number 0..100", pctS)
		}
	}
	if s := p["min_free_bytes"]; s != "" {
		if minBytes, err = strconv.ParseUint(s, 10, 64); err != nil {
			return false, "", fmt.Errorf("min_free_bytes %q: want a whole number of bytes", s)
		}
	}
	free, total, err := diskFree(path)
	if err != nil {
		return false, "", fmt.Errorf("free space of %s: %w", path, err)
	}
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(free) / float64(total)
	}
	summary := fmt.Sprintf("%s: %.1f%% free (%d of %d bytes)", path, pct, free, total)
	if pct < minPct || free < minBytes {
		return false, summary + fmt.Sprintf(", want at least %g%% and %d bytes", minPct, minBytes), nil
	}
	return true, summary, nil
}

// dirSize passes while the files under path take at most max_bytes.
func dirSize(ctx context.Context, p map[string]string) (bool, string, error) {
	path := p["path"]
	if path == "" || !filepath.IsAbs(path) {
		return false, "", fmt.Errorf("path %q: want an absolute directory path", path)
	}
	maxS := p["max_bytes"]
	if maxS == "" {
		maxS = p["threshold"]
	}
	limit, err := strconv.ParseInt(maxS, 10, 64)
	if err != nil || limit < 0 {
		return false, "", fmt.Errorf("max_bytes %q: want a whole number of bytes", maxS)
	}
	var size int64
	err = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return false, "", fmt.Errorf("size of %s: %w", path, err)
	}
	summary := fmt.Sprintf("%s holds %d bytes, at most %d wanted", path, size, limit)
	return size <= limit, summary, nil
}

// pendingReboot fails while the reboot marker exists (Debian and Ubuntu:
// /var/run/reboot-required, written by packages that need a reboot).
func pendingReboot(p map[string]string) (bool, string, error) {
	path := p["path"]
	if path == "" {
		path = rebootMarker
	}
	if path == "" {
		return false, "", errUnsupported
	}
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return false, "a reboot is pending (" + path + " exists)", nil
	case errors.Is(err, fs.ErrNotExist):
		return true, "no reboot pending", nil
	}
	return false, "", err
}
