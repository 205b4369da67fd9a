// Package schedule parses cron specs and maintenance windows, and runs the
// relay's scheduled jobs (Runner).
//
// A spec is standard 5-field cron (minute hour day-of-month month
// day-of-week, with the @daily style descriptors), read in an IANA time
// zone. A 6th, leading seconds field is accepted too (cron.SecondOptional):
// "*/20 * * * * *" fires every 20 seconds. That is for tests and for
// operators who need it; people write 5 fields.
package schedule

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Spec is a parsed cron spec in a time zone.
type Spec struct {
	Cron string
	TZ   string
	loc  *time.Location
	s    cron.Schedule
}

// Parse parses a cron spec and a time zone ("" is UTC).
func Parse(spec, tz string) (Spec, error) {
	if tz == "" {
		tz = "UTC"
	}
	if strings.HasPrefix(strings.TrimSpace(spec), "TZ=") || strings.HasPrefix(strings.TrimSpace(spec), "CRON_TZ=") {
		return Spec{}, fmt.Errorf("cron %q: give the time zone with --tz, not in the spec", spec)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Spec{}, fmt.Errorf("time zone %q unknown: give an IANA name such as Europe/Paris or UTC", tz)
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return Spec{}, fmt.Errorf("cron %q: %v: want 5 fields, minute hour day-of-month month day-of-week, e.g. '0 3 * * 1-5'", spec, err)
	}
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, loc)).IsZero() {
		return Spec{}, fmt.Errorf("cron %q never fires (no such date)", spec)
	}
	return Spec{Cron: spec, TZ: tz, loc: loc, s: s}, nil
}

// Next returns the first fire time strictly after t.
func (s Spec) Next(t time.Time) time.Time {
	return s.s.Next(t.In(s.loc)).UTC()
}

// Window is a maintenance window: it opens at each fire time of its cron
// spec and stays open for Duration.
type Window struct {
	Name     string        `json:"name"`
	Site     string        `json:"site"`
	Cron     string        `json:"cron"`
	TZ       string        `json:"tz"`
	Duration time.Duration `json:"duration"`
	spec     Spec
}

// NewWindow checks and builds a window.
func NewWindow(name, site, cronStart, tz string, d time.Duration) (Window, error) {
	spec, err := Parse(cronStart, tz)
	if err != nil {
		return Window{}, fmt.Errorf("window %s: %w", name, err)
	}
	if d < time.Second || d > 7*24*time.Hour {
		return Window{}, fmt.Errorf("window %s: duration %s: want between 1s and 168h, e.g. 2h", name, d)
	}
	return Window{Name: name, Site: site, Cron: cronStart, TZ: spec.TZ, Duration: d, spec: spec}, nil
}

// ParseWindow reads a window stored as JSON (Window.JSON); "" is no window.
func ParseWindow(s string) (*Window, error) {
	if s == "" {
		return nil, nil
	}
	var w Window
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return nil, fmt.Errorf("window %q: %w", s, err)
	}
	nw, err := NewWindow(w.Name, w.Site, w.Cron, w.TZ, w.Duration)
	if err != nil {
		return nil, err
	}
	return &nw, nil
}

// JSON is how a job carries its window.
func (w Window) JSON() string {
	b, _ := json.Marshal(w)
	return string(b)
}

// OpenAt reports whether the window is open at t and, if so, when it closes.
// It is open when one of its starts lies in (t-Duration, t].
func (w Window) OpenAt(t time.Time) (bool, time.Time) {
	start := w.spec.Next(t.Add(-w.Duration))
	if start.IsZero() || start.After(t) {
		return false, time.Time{}
	}
	return true, start.Add(w.Duration)
}

// NextOpen returns when the window next opens at or after t (t itself
// when it is open then).
func (w Window) NextOpen(t time.Time) time.Time {
	if open, _ := w.OpenAt(t); open {
		return t
	}
	return w.spec.Next(t)
}

// NextClose returns the end of the window that is open at t, or else of
// the next one.
func (w Window) NextClose(t time.Time) time.Time {
	if open, end := w.OpenAt(t); open {
		return end
	}
	return w.spec.Next(t).Add(w.Duration)
}
