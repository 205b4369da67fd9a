package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Reports (issue 17, part 6): figures of a period [From, To) over the
// sites a caller reaches, or one of them. Everything is portable SQL
// (plain GROUP BY and CASE); medians are worked out here, not in SQL.
//
// What counts where:
//   - incidents: opened = created in the period, resolved = resolved in the
//     period; time to resolve is over those resolved in the period.
//   - runs: a run that ended in the period (ended_at), in the site of its
//     agent; a self-heal is a run of a job a policy created for its fix
//     (created_by "policy NAME (self-heal)"), a fix any other job's run.
//   - alerts: opened in the period; top problems group them by kind and
//     check name, ordered by how often they were raised (count sums the
//     deduplicated repeats).
//   - agents by OS and version: the agents enrolled and not revoked now.

// ReportFilter selects a report: SiteID "" is every site in scope.
type ReportFilter struct {
	SiteID   string
	From, To time.Time
}

// RunStats counts the runs that ended in a period.
type RunStats struct {
	Ended, Succeeded, Failed int
}

// Rate is Succeeded / Ended (0 when none ended).
func (r RunStats) Rate() float64 {
	if r.Ended == 0 {
		return 0
	}
	return float64(r.Succeeded) / float64(r.Ended)
}

// Count is one group of a report and its size.
type Count struct {
	Key   string
	Count int
}

// Problem is one recurring problem: alerts of one kind and check.
type Problem struct {
	Kind, Check string
	Alerts      int // alerts opened
	Raised      int // times raised, repeats of a live alert included
}

// Report holds the figures of a period.
type Report struct {
	IncidentsOpened, IncidentsResolved int
	ResolveMedian, ResolveMean         time.Duration
	Fixes, SelfHeals                   RunStats
	AlertsByKind                       []Count
	TopProblems                        []Problem // at most 10
	AgentsByOS, AgentsByVersion        []Count
}

// selfHealLike matches the created_by of self-heal jobs (api.SelfHeal).
const selfHealLike = `policy % (self-heal)`

// Report returns the figures of f's period over the sites scope reaches
// (and f.SiteID, when set).
func (s *Store) Report(ctx context.Context, scope Scope, f ReportFilter) (Report, error) {
	var rep Report
	if !f.To.After(f.From) {
		return rep, fmt.Errorf("report: period %s to %s is empty: give a from before to", f.From.Format(time.DateOnly), f.To.Format(time.DateOnly))
	}
	from, to := dbTime(f.From), dbTime(f.To)
	// where returns the scope and site condition on col, adding to l.
	where := func(l *argList, col string) string {
		c := scope.where(col, l.add)
		if f.SiteID != "" {
			c += " AND " + col + " = " + l.add(f.SiteID)
		}
		return c
	}

	// Incidents.
	var l argList
	q := `SELECT COUNT(*) FROM incidents WHERE ` + where(&l, "site_id") + ` AND created_at >= ` + l.add(from) + ` AND created_at < ` + l.add(to)
	if err := s.db.QueryRowContext(ctx, q, l.args...).Scan(&rep.IncidentsOpened); err != nil {
		return rep, fmt.Errorf("report: incidents opened: %w", err)
	}
	l = argList{}
	q = `SELECT created_at, resolved_at FROM incidents WHERE ` + where(&l, "site_id") + ` AND resolved_at >= ` + l.add(from) + ` AND resolved_at < ` + l.add(to)
	durs, err := queryRows(ctx, s.db, func(sc scanner) (time.Duration, error) {
		var c, r sql.NullTime
		if err := sc.Scan(&c, &r); err != nil {
			return 0, err
		}
		return max(fromNull(r).Sub(fromNull(c)), 0), nil
	}, q, l.args...)
	if err != nil {
		return rep, fmt.Errorf("report: incidents resolved: %w", err)
	}
	rep.IncidentsResolved = len(durs)
	rep.ResolveMedian, rep.ResolveMean = medianMean(durs)

	// Runs: fixes and self-heals.
	l = argList{}
	q = `SELECT heal, COUNT(*),
		COALESCE(SUM(CASE WHEN state = ` + l.add(RunSucceeded) + ` THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN state = ` + l.add(RunFailed) + ` THEN 1 ELSE 0 END), 0)
		FROM (SELECT CASE WHEN j.created_by LIKE ` + l.add(selfHealLike) + ` THEN 1 ELSE 0 END AS heal, r.state AS state
		FROM runs r JOIN jobs j ON j.id = r.job_id JOIN agents a ON a.id = r.agent_id
		WHERE ` + where(&l, "a.site_id") + ` AND r.ended_at >= ` + l.add(from) + ` AND r.ended_at < ` + l.add(to) +
		` AND r.state NOT IN (` + l.add(RunPending) + `, ` + l.add(RunRunning) + `)) x
		GROUP BY heal`
	type runRow struct {
		heal int
		st   RunStats
	}
	runs, err := queryRows(ctx, s.db, func(sc scanner) (runRow, error) {
		var x runRow
		var ended, ok, failed int64
		if err := sc.Scan(&x.heal, &ended, &ok, &failed); err != nil {
			return x, err
		}
		x.st = RunStats{Ended: int(ended), Succeeded: int(ok), Failed: int(failed)}
		return x, nil
	}, q, l.args...)
	if err != nil {
		return rep, fmt.Errorf("report: runs: %w", err)
	}
	for _, x := range runs {
		if x.heal == 1 {
			rep.SelfHeals = x.st
		} else {
			rep.Fixes = x.st
		}
	}

	// Alerts by kind, and the top recurring problems.
	l = argList{}
	q = `SELECT kind, check_name, COUNT(*), COALESCE(SUM(count), 0) FROM alerts WHERE ` + where(&l, "site_id") +
		` AND opened_at >= ` + l.add(from) + ` AND opened_at < ` + l.add(to) + ` GROUP BY kind, check_name`
	probs, err := queryRows(ctx, s.db, func(sc scanner) (Problem, error) {
		var p Problem
		var n, raised int64
		err := sc.Scan(&p.Kind, &p.Check, &n, &raised)
		p.Alerts, p.Raised = int(n), int(raised)
		return p, err
	}, q, l.args...)
	if err != nil {
		return rep, fmt.Errorf("report: alerts: %w", err)
	}
	byKind := map[string]int{}
	for _, p := range probs {
		byKind[p.Kind] += p.Alerts
	}
	rep.AlertsByKind = sortCounts(byKind)
	slices.SortFunc(probs, func(a, b Problem) int {
		if a.Raised != b.Raised {
			return b.Raised - a.Raised
		}
		if a.Alerts != b.Alerts {
			return b.Alerts - a.Alerts
		}
		if a.Kind != b.Kind {
			return cmp.Compare(a.Kind, b.Kind)
		}
		return cmp.Compare(a.Check, b.Check)
	})
	rep.TopProblems = probs[:min(len(probs), 10)]

	// Agents by OS and version.
	for _, g := range []struct {
		col string
		out *[]Count
	}{{"os", &rep.AgentsByOS}, {"version", &rep.AgentsByVersion}} {
		l = argList{}
		q = `SELECT ` + g.col + `, COUNT(*) FROM agents WHERE revoked_at IS NULL AND ` + where(&l, "site_id") + ` GROUP BY ` + g.col
		counts, err := queryRows(ctx, s.db, func(sc scanner) (Count, error) {
			var c Count
			var n int64
			err := sc.Scan(&c.Key, &n)
			c.Count = int(n)
			return c, err
		}, q, l.args...)
		if err != nil {
			return rep, fmt.Errorf("report: agents by %s: %w", g.col, err)
		}
		m := map[string]int{}
		for _, c := range counts {
			m[c.Key] += c.Count
		}
		*g.out = sortCounts(m)
	}
	return rep, nil
}

// sortCounts returns m's groups, largest first, then by key.
func sortCounts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// medianMean returns the median and mean of d (zero for none).
func medianMean(d []time.Duration) (time.Duration, time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return med, sum / time.Duration(len(s))
}
