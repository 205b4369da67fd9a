package server

import (
	"context"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
)

// Policies across the tier (issue 17). A policy created or deleted through
// any relay is announced on the bus; every relay, the one that made the
// change included, then reloads the policies and sends each agent it holds
// its new set. A relay alone has bus.Local, which calls it back at once.
// An announcement lost while NATS was unreachable is made up for after the
// reconnection (resyncPolicies), and a relay that hears a result for a
// policy it does not know reloads its policies first (checkRelay.results).

// subjectPoliciesChanged carries no data: "reload the policies".
const subjectPoliciesChanged = "patchbay.policies.changed"

// policyAnnouncer is the API's PolicyNotifier on a relay: it tells every
// relay of the tier, this one by the bus too.
type policyAnnouncer struct {
	bus    hub.Bus
	checks *checkRelay
	log    zerolog.Logger
}

// PoliciesChanged implements api.PolicyNotifier.
func (p policyAnnouncer) PoliciesChanged() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.bus.Publish(ctx, subjectPoliciesChanged, nil); err != nil {
		// This relay's agents get the change now; the others' relays
		// reload when they are back on the bus.
		p.log.Warn().Err(err).Msg("policies changed: the other relays of the tier could not be told now; they reload the policies when NATS is back")
		p.checks.PoliciesChanged()
	}
}

// joinPolicies makes the checks relay reload and push the policies when
// any relay of the tier announces a change, until the returned function is
// called.
func (cr *checkRelay) joinPolicies(b hub.Bus) (stop func(), err error) {
	return b.Subscribe(subjectPoliciesChanged, func([]byte) { cr.PoliciesChanged() })
}

// resyncPolicies reloads the policies after the bus was unreachable (an
// announcement may have been lost) and sends the agents held here their
// sets when the policies are not the ones this relay had sent them.
func (cr *checkRelay) resyncPolicies() {
	cr.mu.Lock()
	loaded, stale, before := cr.loaded, cr.stale, policyIDs(cr.policies)
	cr.mu.Unlock()
	if stale {
		cr.log.Info().Msg("policies changed while NATS was unreachable: sending the agents here their new sets")
		cr.PoliciesChanged()
		return
	}
	if !loaded {
		return // nothing sent from a cache yet: the next use reads the store
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := cr.st.ListPolicies(ctx)
	if err != nil {
		cr.log.Error().Err(err).Msg("catch up with policy changes after a NATS outage: the next reconnection tries again")
		return
	}
	if slices.Equal(before, policyIDs(ps)) {
		return
	}
	cr.log.Info().Msg("policies changed while NATS was unreachable: sending the agents here their new sets")
	cr.PoliciesChanged()
}

// policyIDs returns the sorted IDs of ps (policies are created and deleted,
// never edited: their IDs say which set it is).
func policyIDs(ps []store.Policy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	slices.Sort(out)
	return out
}
