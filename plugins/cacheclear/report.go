package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is the outcome of one Check or Fix.
type report struct {
	cfg     config
	fix     bool // bytes were freed, not only counted
	results []*targetResult
	dns     *dnsResult // nil when the dns scope was not asked for
}

// scopes returns the asked-for file scopes in report order.
func (r *report) scopes() []string {
	var s []string
	for _, sc := range fileScopes {
		if r.cfg.has(sc) {
			s = append(s, sc)
		}
	}
	return s
}

// scopeTally sums the results of one scope.
func (r *report) scopeTally(scope string) tally {
	var t tally
	for _, res := range r.results {
		if res.scope == scope {
			t.add(res.total)
		}
	}
	return t
}

// total sums every result.
func (r *report) total() tally {
	var t tally
	for _, res := range r.results {
		t.add(res.total)
	}
	return t
}

// changes reports whether the run would change (Check) or changed (Fix)
// the machine: bytes to free or freed, or a DNS flush.
func (r *report) changes() bool {
	return r.total().Bytes > 0 || (r.dns != nil && r.dns.flushing())
}

// summary is one line: "1.2 GiB reclaimable (temp 300 MiB, user 900 MiB,
// package 0 B), dns pending (…)" for Check, "freed …" for Fix.
func (r *report) summary() string {
	var parts []string
	for _, sc := range r.scopes() {
		parts = append(parts, sc+" "+formatBytes(r.scopeTally(sc).Bytes))
	}
	var b strings.Builder
	if len(parts) > 0 {
		size := formatBytes(r.total().Bytes)
		if r.fix {
			fmt.Fprintf(&b, "freed %s (%s)", size, strings.Join(parts, ", "))
		} else {
			fmt.Fprintf(&b, "%s reclaimable (%s)", size, strings.Join(parts, ", "))
		}
	}
	if r.dns != nil {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.dns.String())
	}
	if n := r.total().Errors; n > 0 {
		fmt.Fprintf(&b, ", %d %s", n, plural(n, "error", "errors"))
	}
	return b.String()
}

// scopeLine is the output line Fix streams for one scope.
func (r *report) scopeLine(scope string) string {
	t := r.scopeTally(scope)
	return fmt.Sprintf("%s: freed %s in %d %s (%d kept, %d %s)", scope, formatBytes(t.Bytes),
		t.Files, plural(t.Files, "file", "files"), t.Kept, t.Errors, plural(t.Errors, "error", "errors"))
}

// details is a table of every target (and browser part) followed by the
// bytes per scope in a fixed key=value form, and the problems.
func (r *report) details() string {
	var b strings.Builder
	verb := "reclaimable"
	if r.fix {
		verb = "freed"
	}
	root := r.cfg.root
	if r.cfg.sandbox {
		root += " (sandbox)"
	}
	fmt.Fprintf(&b, "root %s, min_age %s\n\n", root, r.cfg.minAge)
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SCOPE\tENTRY\tFILES\t%s\tKEPT\tERRORS\tSTATUS\tPATH\n", strings.ToUpper(verb))
	for _, res := range r.results {
		t := res.total
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", res.scope, res.name, t.Files, formatBytes(t.Bytes),
			t.Kept, t.Errors, res.status, res.path)
		names := make([]string, 0, len(res.parts))
		for name := range res.parts {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			p := res.parts[name]
			fmt.Fprintf(tw, "%s\t  %s: %s\t%d\t%s\t\t\t\t\n", res.scope, res.name, name, p.Files, formatBytes(p.Bytes))
		}
	}
	if r.dns != nil {
		fmt.Fprintf(tw, "dns\t-\t\t\t\t\t%s\t%s\n", r.dns.status, r.dns.msg)
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n") {
		b.WriteString(strings.TrimRight(line, " ") + "\n") // part rows end in empty cells
	}
	b.WriteString("\nbytes")
	for _, sc := range r.scopes() {
		fmt.Fprintf(&b, " %s=%d", sc, r.scopeTally(sc).Bytes)
	}
	fmt.Fprintf(&b, " total=%d\n", r.total().Bytes)
	var notes []string
	for _, res := range r.results {
		if res.status == statusRefused || res.status == statusSkipped {
			notes = append(notes, fmt.Sprintf("%s %s: %s", res.scope, res.status, res.msg))
		}
		for _, e := range res.errs {
			if res.status == statusOK {
				notes = append(notes, fmt.Sprintf("%s error: %s", res.scope, e))
			}
		}
		if extra := res.total.Errors - int64(len(res.errs)); extra > 0 {
			notes = append(notes, fmt.Sprintf("%s error: %d more in %s", res.scope, extra, res.path))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

// formatBytes renders n in binary units: "0 B", "512 B", "1.5 KiB", "300 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit-0.05 && i < 5 { // 1023.97 KiB shows as 1 MiB, not 1024 KiB
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("KMGTPE"[i]) + "iB"
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
