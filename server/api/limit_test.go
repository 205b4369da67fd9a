package api

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/authlimit"
)

// Bad tokens are counted per source: after the burst the source gets 429
// with Retry-After before its token is even looked at, while another
// source with a good token is served.
func TestBadTokensThrottleTheirSource(t *testing.T) {
	a, h, tok := testAPI(t)
	a.Limiter = authlimit.New(authlimit.Config{SourceBurst: 3, SourceEvery: time.Minute})
	get := func(src, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/agents", nil)
		req.RemoteAddr = src
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := get("198.51.100.7:40000", "pba_guess"); rec.Code != 401 {
			t.Fatalf("guess %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := get("198.51.100.7:40001", tok[apiv1.RoleViewer])
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" || !strings.Contains(rec.Body.String(), "too many failed sign-ins from 198.51.100.7: retry in 1m0s") {
		t.Fatalf("throttled source: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := get("192.0.2.50:1", tok[apiv1.RoleViewer]); rec.Code != 200 {
		t.Fatalf("another source with a good token: %d %s", rec.Code, rec.Body)
	}
	sums := a.Limiter.Flush(time.Now())
	if len(sums) != 1 || sums[0].Failures != 3 || sums[0].Throttled != 1 {
		t.Fatalf("summaries %+v", sums)
	}
}
