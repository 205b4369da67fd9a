package server

// takesRunReboot reports whether an agent understands a run's restart wish
// (wire.RunReboot). Agents decode run requests strictly, so one from before
// the field would refuse the run and drop its link. No agent message says
// which fields it knows, and adding one would break older relays (they
// decode agent messages strictly too); the sign used is that the agent
// asked for its check policies on this relay (policies_request), which
// agents of issue 17 do after each connect. An agent connected to another
// relay of a tier, or one whose request has not arrived yet, gets runs
// without the wish: its endpoint policy alone decides (as for "ask").
func (cr *checkRelay) takesRunReboot(agentID string) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.wants[agentID]
}

// newLink forgets that an agent asked for its policies when it opens a new
// link (before its welcome, so before it can ask again): the new link may
// be another build (a rollback to one from before the restart wish), which
// must ask before it gets the field.
func (cr *checkRelay) newLink(agentID string) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	delete(cr.wants, agentID)
}
