package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The binary-size section's markers in the report.
const (
	sizesBegin = "<!-- sizes:begin (written by patchbay-loadgen bench --only sizes; rewrites only this section) -->"
	sizesEnd   = "<!-- sizes:end -->"
)

// agentSizeTarget is issue 16's limit for the Linux agent: 25 MB.
const agentSizeTarget = 25_000_000

// releaseBinary is one binary of a release directory (make release):
// PROGRAM_VERSION_OS_ARCH[.exe].
type releaseBinary struct {
	program, version, os, arch string
	size                       int64
}

type sizesResults struct {
	started time.Time
	dir     string
	version string
	bins    []releaseBinary
	cmd     string
}

// readRelease lists the binaries of the release directory dir.
func readRelease(dir string) (*sizesResults, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("release directory: %w (run make release, or BENCH_ONLY=sizes make bench which does)", err)
	}
	r := &sizesResults{started: time.Now().UTC(), dir: dir}
	for _, e := range entries {
		parts := strings.Split(strings.TrimSuffix(e.Name(), ".exe"), "_")
		if len(parts) != 4 || !e.Type().IsRegular() || !strings.HasPrefix(parts[0], "patchbay") {
			continue // packages, manifest, plist
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		b := releaseBinary{program: parts[0], version: parts[1], os: parts[2], arch: parts[3], size: fi.Size()}
		if r.version != "" && r.version != b.version {
			return nil, fmt.Errorf("release directory %s mixes versions %s and %s: use one make release's dist/VERSION", dir, r.version, b.version)
		}
		r.version = b.version
		r.bins = append(r.bins, b)
	}
	if r.version == "" {
		return nil, fmt.Errorf("release directory %s has no patchbay binaries: run make release", dir)
	}
	sort.Slice(r.bins, func(i, j int) bool {
		a, b := r.bins[i], r.bins[j]
		if a.os != b.os {
			return osOrder(a.os) < osOrder(b.os)
		}
		if a.arch != b.arch {
			return a.arch < b.arch
		}
		return a.program < b.program
	})
	return r, nil
}

// osOrder puts linux first, then windows, then darwin, then the rest.
func osOrder(osName string) int {
	switch osName {
	case "linux":
		return 0
	case "windows":
		return 1
	case "darwin":
		return 2
	}
	return 3
}

func (r *sizesResults) size(program, osName, arch string) int64 {
	for _, b := range r.bins {
		if b.program == program && b.os == osName && b.arch == arch {
			return b.size
		}
	}
	return -1
}

func mb(n int64) string {
	if n < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// renderSizes renders the sizes section, markers included.
func renderSizes(r *sizesResults) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	row := func(cells ...string) { p("| %s |\n", strings.Join(cells, " | ")) }
	p("%s\n\n## Binary sizes\n\n", sizesBegin)
	p("Issue 16: the size of each binary of `make release` (version %s, `CGO_ENABLED=0`, `-trimpath -ldflags \"-s -w\"`), read from `%s` on %s UTC by\n\n```\n%s\n```\n\n"+
		"(`BENCH_ONLY=sizes make bench` runs `make release` first). 1 MB = 1,000,000 bytes. `--only sizes` rewrites only this section.\n\n",
		r.version, r.dir, r.started.Format("2006-01-02 15:04"), r.cmd)
	row("Platform", "patchbay-agent", "Target", "Status", "patchbay (CLI)", "patchbay-server")
	row("---", "---", "---", "---", "---", "---")
	seen := map[string]bool{}
	for _, b := range r.bins {
		plat := b.os + "/" + b.arch
		if seen[plat] {
			continue
		}
		seen[plat] = true
		agent := r.size("patchbay-agent", b.os, b.arch)
		target, status := "—", "measured"
		if b.os == "linux" && agent >= 0 {
			target = "≤ 25 MB"
			status = "**met**"
			if agent > agentSizeTarget {
				status = "**not met**"
			}
		}
		row(plat, mb(agent), target, status, mb(r.size("patchbay", b.os, b.arch)), mb(r.size("patchbay-server", b.os, b.arch)))
	}
	var plugins []string
	for _, b := range r.bins {
		if strings.HasPrefix(b.program, "patchbay-plugin-") && b.os == "linux" && b.arch == "amd64" {
			plugins = append(plugins, fmt.Sprintf("%s %s", strings.TrimPrefix(b.program, "patchbay-plugin-"), mb(b.size)))
		}
	}
	if len(plugins) > 0 {
		p("\nBuilt-in plugins, linux/amd64: %s.\n", strings.Join(plugins, ", "))
	}
	p("\n%s\n", sizesEnd)
	return w.String()
}

// runSizesOnly reads o.releaseDir and rewrites the sizes section of o.out.
func runSizesOnly(o benchOptions) error {
	r, err := readRelease(o.releaseDir)
	if err != nil {
		return fmt.Errorf("sizes: %w", err)
	}
	r.cmd = commandLine()
	raw, err := os.ReadFile(o.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(raw)
	if doc == "" {
		doc = "# Benchmarks\n\nOnly the sizes part has been run (`patchbay-loadgen bench --only sizes`); `make bench` adds the other figures.\n"
	}
	if dir := filepath.Dir(o.out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(o.out, []byte(spliceSection(doc, sizesBegin, sizesEnd, renderSizes(r))), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("sizes section written to %s", o.out)
	for _, b := range r.bins {
		if b.program == "patchbay-agent" {
			fmt.Printf("patchbay-agent %s/%s: %s\n", b.os, b.arch, mb(b.size))
		}
	}
	return nil
}
