package consent

import (
	"fmt"
	"slices"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// MaxRemember bounds Policy.Remember.
const MaxRemember = 8 * time.Hour

// grant is an approval the person at the machine gave in prompt mode,
// remembered for Policy.Remember: a later request from the same technician
// for the same or fewer capabilities is approved without asking again
// (typically `patchbay ssh` followed by `scp`). A view-only approval is
// kept as wire.CapDesktopView, so a later request for wire.CapDesktop (full
// control) asks again, while a full-control approval also covers a later
// request to see the screen only. Denials are never remembered, grants live
// in memory only (an agent restart forgets them), and the user ending any
// session forgets them all.
type grant struct {
	technician string
	caps       []string // sorted
	by         string   // who approved
	session    string   // the session they approved
	until      time.Time
}

// covers reports whether g approves req at now.
func (g grant) covers(req Request, now time.Time) bool {
	if req.Technician != g.technician || !now.Before(g.until) {
		return false
	}
	for _, c := range req.Capabilities {
		_, ok := slices.BinarySearch(g.caps, c)
		if !ok && c == wire.CapDesktopView { // full control includes seeing
			_, ok = slices.BinarySearch(g.caps, wire.CapDesktop)
		}
		if !ok {
			return false
		}
	}
	return true
}

// granted returns the decision of a remembered grant that covers req.
func (c *Consent) granted(req Request, now time.Time) (Decision, bool) {
	if c.policy.Desktop == DesktopViewOnly { // the screen can only be seen: a view-only grant covers it
		req.Capabilities = grantCaps(req, ChoiceViewOnly)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.grants[:0]
	var hit *grant
	for _, g := range c.grants {
		if !now.Before(g.until) {
			continue // expired: dropped
		}
		live = append(live, g)
		if hit == nil && g.covers(req, now) {
			hit = &live[len(live)-1]
		}
	}
	c.grants = live
	if hit == nil {
		return Decision{}, false
	}
	return Decision{
		Approved: true, Backend: c.kind, By: hit.by,
		Message: fmt.Sprintf("approved by %s's earlier approval of session %s, remembered until %s",
			hit.by, hit.session, hit.until.Format("15:04:05")),
	}, true
}

// remember keeps the user's approval of req, with its choice, for
// Policy.Remember.
func (c *Consent) remember(req Request, by, choice string, now time.Time) {
	if c.policy.Remember <= 0 {
		return
	}
	if c.policy.Desktop == DesktopViewOnly {
		choice = ChoiceViewOnly
	}
	caps := grantCaps(req, choice)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants = append(c.grants, grant{technician: req.Technician, caps: caps, by: by, session: req.SessionID, until: now.Add(c.policy.Remember)})
}

// Forget drops every remembered approval: the user ended a session, so the
// next request asks again.
func (c *Consent) Forget() {
	c.mu.Lock()
	n := len(c.grants)
	c.grants = nil
	c.mu.Unlock()
	if n > 0 {
		c.log.Info().Int("grants", n).Msg("consent: remembered approvals forgotten")
	}
}
