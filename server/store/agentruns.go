package store

import (
	"context"
	"fmt"
)

// AgentRuns returns an agent's newest runs first (run IDs are UUIDv7, so
// they sort by creation), at most limit.
func (s *Store) AgentRuns(ctx context.Context, agentID string, limit int) ([]Run, error) {
	runs, err := s.queryRuns(ctx, scanRun, limit, `SELECT `+runColumns+` FROM runs WHERE agent_id = $1 ORDER BY id DESC LIMIT $2`,
		agentID, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of agent %s: %w", agentID, err)
	}
	return runs, nil
}
