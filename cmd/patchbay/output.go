package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
)

// Output formats of list and show commands.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// outputFlag is the value of -o/--output; it refuses anything but table and
// json while the flags are parsed, so a typo is a usage error.
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }
func (o *outputFlag) Type() string   { return "format" }
func (o *outputFlag) Set(s string) error {
	switch s {
	case formatTable, formatJSON:
		*o = outputFlag(s)
		return nil
	}
	return fmt.Errorf("want table or json")
}

// addOutputFlag registers -o/--output on cmd, defaulting to table.
func addOutputFlag(cmd *cobra.Command, o *outputFlag) {
	*o = formatTable
	cmd.Flags().VarP(o, "output", "o", "output format: table or json")
}

// writeJSON writes v as JSON indented by two spaces, with a trailing newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table writes aligned columns. Cells are cleaned of control characters (an
// agent reports its own hostname, users and tags: they must not be able to
// drive the technician's terminal) and an empty cell is shown as "-".
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		c = clean(c)
		if c == "" {
			c = "-"
		}
		io.WriteString(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// clean replaces control and other non-printable characters (tabs and
// newlines too) with Go escapes, so untrusted text stays on one line and
// cannot send terminal escape sequences.
func clean(s string) string {
	if strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if notPrintable(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// timeLayout is how tables show absolute times: RFC 3339 in UTC.
const timeLayout = "2006-01-02T15:04:05Z07:00"

// fmtTime formats t in UTC, or "" (shown as "-") for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// relTime says how long ago (or from now) t is: "5s ago", "3m ago", "7h ago",
// "3d ago", "in 23h", "just now"; "never" when t is nil or zero.
func relTime(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d > -time.Second && d < time.Second:
		return "just now"
	case d > 0:
		return humanDuration(d) + " ago"
	default:
		return "in " + humanDuration(-d)
	}
}

// humanDuration rounds d down to its largest useful unit: seconds below a
// minute, minutes below an hour, hours below two days, then days.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// withRel formats t absolutely with the relative form after it.
func withRel(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return fmtTime(*t) + " (" + relTime(now, t) + ")"
}

// fmtTags formats tags as k=v pairs sorted by key, joined by sep.
func fmtTags(tags map[string]string, sep string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, sep)
}

// fmtDetail formats audit details as space-separated k=v pairs sorted by
// key; a value that is empty or holds spaces, quotes or '=' is quoted.
func fmtDetail(detail map[string]string) string {
	keys := make([]string, 0, len(detail))
	for k := range detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := detail[k]
		if v == "" || strings.ContainsAny(v, " \"=") || strings.IndexFunc(v, notPrintable) >= 0 {
			v = strconv.Quote(v)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// parseTags parses "k=v,k=v" (spaces around items allowed). Keys must be
// non-empty and unique.
func parseTags(s string) (map[string]string, error) {
	tags := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return tags, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q: want key=value", strings.TrimSpace(item))
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("tag %q given twice", k)
		}
		tags[k] = v
	}
	return tags, nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@%+,-]+$`)

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
