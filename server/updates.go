package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Pending updates (issue 17, part 1): the Details of a patchinstall run
// list the updates its Check found ("pending") or, after a Fix, what is
// still pending ("pending_after", plugin 1.1.0 on). The relay keeps the
// agent's latest list (store.PutPendingUpdates replaces it); simulated
// fixes and results without a list change nothing.

// patchPlugin is the plugin whose results carry pending updates.
const patchPlugin = "patchinstall"

// updateSink stores the pending updates patchinstall results report. It is
// the jobs dispatcher's ResultSink: called on the dispatcher's writer
// goroutine, it owns no goroutine of its own.
type updateSink struct {
	st  *store.Store
	log zerolog.Logger
}

// updateStoreTimeout bounds one store write.
const updateStoreTimeout = 10 * time.Second

// RunStored stores the pending updates of a patchinstall result.
func (u updateSink) RunStored(plugin, agentID string, res wire.RunResult) {
	if plugin != patchPlugin || res.Details == "" {
		return
	}
	rep, ok, err := parsePendingUpdates([]byte(res.Details))
	if err != nil {
		u.log.Warn().Err(err).Str("agent_id", agentID).Str("run_id", res.RunID).Msg("pending updates: details not stored")
		return
	}
	if !ok {
		return
	}
	at := res.Started
	if rep.after {
		at = res.Ended
	}
	if at.IsZero() {
		at = time.Now()
	}
	c := store.UpdateCheck{AgentID: agentID, CheckedAt: at.UTC(), RunID: res.RunID, Manager: rep.manager,
		SecurityOnly: rep.securityOnly, Security: rep.security}
	ctx, cancel := context.WithTimeout(context.Background(), updateStoreTimeout)
	defer cancel()
	if _, err := u.st.PutPendingUpdates(ctx, c, rep.updates); err != nil {
		u.log.Error().Err(err).Str("agent_id", agentID).Str("run_id", res.RunID).Msg("pending updates")
	}
}

// pendingReport is what parsePendingUpdates read.
type pendingReport struct {
	manager      string
	securityOnly bool
	after        bool // the list is what a Fix left pending
	security     int  // -1: not classified
	updates      []store.PendingUpdate
}

// pendingJSON is one update as patchinstall's details spell it.
type pendingJSON struct {
	Name       string `json:"name"`
	From       string `json:"from"`
	To         string `json:"to"`
	Arch       string `json:"arch"`
	Repo       string `json:"repo"`
	Security   bool   `json:"security"`
	Categories string `json:"categories"`
}

// Limits on what is kept of one update.
const (
	maxUpdateName     = 200
	maxUpdateVersion  = 128
	maxUpdateArch     = 32
	maxUpdateCategory = 200
	maxUpdateManager  = 32
)

// parsePendingUpdates reads the pending updates from a patchinstall run's
// Details: its first JSON value (the agent may append lines after it, such
// as the restart decision). ok is false when the details carry no list (a
// simulated or older fix, or another shape): nothing is to be stored.
// Entries without a usable name are dropped, long fields cut, duplicates
// (name and arch) kept once, at most store.MaxPendingUpdates. An error
// means the details are not JSON at all.
func parsePendingUpdates(details []byte) (pendingReport, bool, error) {
	var d struct {
		Manager       string         `json:"manager"`
		SecurityOnly  bool           `json:"security_only"`
		Simulated     *bool          `json:"simulated"`
		Pending       *[]pendingJSON `json:"pending"`
		Security      *int           `json:"security"`
		PendingAfter  *[]pendingJSON `json:"pending_after"`
		SecurityAfter *int           `json:"security_after"`
	}
	dec := json.NewDecoder(bytes.NewReader(details))
	if err := dec.Decode(&d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return pendingReport{}, false, fmt.Errorf("patchinstall details: %s is a JSON %s, not the plugin's shape", orTop(te.Field), te.Value)
		}
		return pendingReport{}, false, fmt.Errorf("patchinstall details: %w", err)
	}
	rep := pendingReport{manager: clipText(d.Manager, maxUpdateManager), securityOnly: d.SecurityOnly, security: -1}
	list, sec := d.Pending, d.Security
	if d.Simulated != nil { // a Fix's details
		if *d.Simulated || d.PendingAfter == nil {
			return pendingReport{}, false, nil
		}
		list, sec, rep.after = d.PendingAfter, d.SecurityAfter, true
	}
	if list == nil || rep.manager == "" {
		return pendingReport{}, false, nil
	}
	seen := map[[2]string]bool{}
	for _, p := range *list {
		name := clipText(p.Name, maxUpdateName)
		if name == "" || len(rep.updates) >= store.MaxPendingUpdates {
			continue
		}
		arch := clipText(p.Arch, maxUpdateArch)
		if k := [2]string{name, arch}; seen[k] {
			continue
		} else {
			seen[k] = true
		}
		cat := p.Categories
		if cat == "" {
			cat = p.Repo
		}
		rep.updates = append(rep.updates, store.PendingUpdate{Name: name, Arch: arch,
			From: clipText(p.From, maxUpdateVersion), Version: clipText(p.To, maxUpdateVersion),
			Security: p.Security, Category: clipText(cat, maxUpdateCategory)})
	}
	if sec != nil {
		rep.security = min(max(*sec, 0), 1_000_000)
	}
	return rep, true, nil
}

func orTop(field string) string {
	if field == "" {
		return "the value"
	}
	return field
}

// clipText keeps the printable characters of s (valid UTF-8, no control
// characters), trimmed, at most n bytes on a rune boundary.
func clipText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
