package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// agentQuery is the optional free text, sort order and page of GET
// /v1/agents (q, sort, limit, offset). Without them the list is what it
// always was: every agent matching target, in the store's order. With them
// the response is still a JSON array, and the X-Total-Count and
// X-Online-Count headers give the counts before paging, so the web console
// renders a page of a 19,000-agent fleet, never the whole of it.
type agentQuery struct {
	text   string // lower-cased free text; "" matches everything
	sort   string // "" (store order) or one of agentSorts
	desc   bool
	limit  int // 0: no limit
	offset int
}

// agentSorts are the keys sort= accepts; a leading "-" reverses the order.
var agentSorts = []string{"hostname", "os", "version", "online", "last_seen", "id"}

// maxAgentPage bounds limit.
const maxAgentPage = 1000

// parseAgentQuery reads q, sort, limit and offset.
func parseAgentQuery(v url.Values) (agentQuery, error) {
	q := agentQuery{text: strings.ToLower(strings.TrimSpace(v.Get("q")))}
	if len(q.text) > 256 {
		return q, fmt.Errorf("q: %d bytes, at most 256", len(q.text))
	}
	if s := v.Get("sort"); s != "" {
		q.sort, q.desc = strings.CutPrefix(s, "-")
		if !slices.Contains(agentSorts, q.sort) {
			return q, fmt.Errorf("sort %q: want one of %s, with a leading - to reverse", s, strings.Join(agentSorts, ", "))
		}
	}
	var err error
	if q.limit, err = pageParam(v, "limit", maxAgentPage); err != nil {
		return q, err
	}
	if q.offset, err = pageParam(v, "offset", 1<<31-1); err != nil {
		return q, err
	}
	return q, nil
}

func pageParam(v url.Values, name string, max int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%s %q: want a whole number from 0 to %d", name, s, max)
	}
	return n, nil
}

// match reports whether the free text occurs in the agent's hostname, ID,
// OS, arch, version or one of its tags (as key=value), ignoring case.
func (q agentQuery) match(ag store.Agent) bool {
	if q.text == "" {
		return true
	}
	for _, f := range []string{ag.Hostname, ag.ID, ag.OS, ag.Arch, ag.Version} {
		if strings.Contains(strings.ToLower(f), q.text) {
			return true
		}
	}
	for k, v := range ag.Tags {
		if strings.Contains(strings.ToLower(k+"="+v), q.text) {
			return true
		}
	}
	return false
}

// page sorts and slices the matching agents and sets the count headers.
func (q agentQuery) page(w http.ResponseWriter, agents []apiv1.Agent) []apiv1.Agent {
	online := 0
	for _, ag := range agents {
		if ag.Online {
			online++
		}
	}
	w.Header().Set(apiv1.HeaderTotalCount, strconv.Itoa(len(agents)))
	w.Header().Set(apiv1.HeaderOnlineCount, strconv.Itoa(online))
	if q.sort != "" {
		slices.SortStableFunc(agents, func(a, b apiv1.Agent) int {
			c := compareAgents(q.sort, a, b)
			if c == 0 {
				c = cmp.Or(strings.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname)), strings.Compare(a.ID, b.ID))
			}
			if q.desc {
				return -c
			}
			return c
		})
	}
	if q.offset >= len(agents) {
		return []apiv1.Agent{}
	}
	agents = agents[q.offset:]
	if q.limit > 0 && q.limit < len(agents) {
		agents = agents[:q.limit]
	}
	return agents
}

func compareAgents(key string, a, b apiv1.Agent) int {
	switch key {
	case "hostname":
		return strings.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname))
	case "os":
		return strings.Compare(a.OS+" "+a.Arch, b.OS+" "+b.Arch)
	case "version":
		return strings.Compare(a.Version, b.Version)
	case "online":
		return cmpBool(b.Online, a.Online) // online first
	case "last_seen":
		return compareSeen(a, b)
	default: // id
		return strings.Compare(a.ID, b.ID)
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// compareSeen orders by last seen, most recent first; never seen last.
func compareSeen(a, b apiv1.Agent) int {
	switch {
	case a.LastSeen == nil && b.LastSeen == nil:
		return 0
	case a.LastSeen == nil:
		return 1
	case b.LastSeen == nil:
		return -1
	}
	return b.LastSeen.Compare(*a.LastSeen)
}
