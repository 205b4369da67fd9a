package api

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

func TestAgentQuery(t *testing.T) {
	for _, bad := range []string{"sort=name", "limit=-1", "limit=1001", "offset=x", "q=" + strings.Repeat("a", 300)} {
		v, _ := url.ParseQuery(bad)
		if _, err := parseAgentQuery(v); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	seen := func(m int) *time.Time { x := time.Unix(0, 0).Add(time.Duration(m) * time.Minute); return &x }
	agents := func() []apiv1.Agent {
		return []apiv1.Agent{
			{ID: "c", Hostname: "Web-2", OS: "linux", LastSeen: seen(1)},
			{ID: "a", Hostname: "db-1", OS: "windows", Online: true, LastSeen: seen(9)},
			{ID: "b", Hostname: "web-1", OS: "linux"},
		}
	}
	for _, tt := range []struct{ query, want, total string }{
		{"", "c a b", "3"},
		{"sort=hostname", "a b c", "3"},
		{"sort=-hostname", "c b a", "3"},
		{"sort=online", "a b c", "3"},
		{"sort=last_seen", "a c b", "3"},
		{"sort=hostname&limit=2", "a b", "3"},
		{"sort=hostname&limit=2&offset=2", "c", "3"},
		{"sort=hostname&offset=5", "", "3"},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, err := parseAgentQuery(v)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		w := httptest.NewRecorder()
		var ids []string
		for _, a := range q.page(w, agents()) {
			ids = append(ids, a.ID)
		}
		if got := strings.Join(ids, " "); got != tt.want || w.Header().Get(apiv1.HeaderTotalCount) != tt.total ||
			w.Header().Get(apiv1.HeaderOnlineCount) != "1" {
			t.Errorf("%s: %q total %s online %s, want %q total %s online 1", tt.query, got,
				w.Header().Get(apiv1.HeaderTotalCount), w.Header().Get(apiv1.HeaderOnlineCount), tt.want, tt.total)
		}
	}
}
