package store

import (
	"context"
	"fmt"
)

// RequeueRun puts a run that its agent could not start (the plugin could
// not be downloaded from the relay) back among the runs never sent, if it
// is that agent's, was sent and is not final. It reports whether it did.
func (s *Store) RequeueRun(ctx context.Context, runID, agentID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET state = 'pending', dispatched_at = NULL, started_at = NULL
		WHERE id = $1 AND agent_id = $2 AND state IN ('pending', 'running') AND dispatched_at IS NOT NULL`, runID, agentID)
	if err != nil {
		return false, fmt.Errorf("requeue run %s: %w", runID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("requeue run %s: %w", runID, err)
	}
	return n > 0, nil
}
