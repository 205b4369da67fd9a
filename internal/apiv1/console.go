package apiv1

import "time"

// ConsoleLink is the answer to POST /v1/console/links: a one-time link
// into the web console for the caller's identity. Path is relative to the
// relay's URL ("/login#pbl_..."); the secret is in the fragment, which a
// browser never sends to a server or in a Referer.
type ConsoleLink struct {
	Path      string    `json:"path"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Agent list paging (GET /v1/agents?limit=&offset=&sort=&q=): the response
// stays a JSON array; these headers carry the counts before paging.
const (
	HeaderTotalCount  = "X-Total-Count"  // agents matching target and q
	HeaderOnlineCount = "X-Online-Count" // of those, online now
)
