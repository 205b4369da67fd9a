package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// API tokens are revoked by ID, unique ID prefix or the name of one active
// token; a name two active tokens share is refused with both named.
func TestRevokeAPITokenByName(t *testing.T) {
	a, h, tok := testAPI(t)
	ctx := context.Background()
	var ids []string
	for range 2 {
		_, x, err := MintAPIToken(ctx, a.Store, "test", apiv1.RoleTechnician, "carol", 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, x.ID)
	}
	admin := tok[apiv1.RoleAdmin]
	rec := do(h, "DELETE", "/v1/api-tokens/carol", admin, "")
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), ids[0]) || !strings.Contains(rec.Body.String(), ids[1]) {
		t.Fatalf("ambiguous name: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "DELETE", "/v1/api-tokens/"+ids[0], admin, ""); rec.Code != 204 {
		t.Fatalf("by ID: %d %s", rec.Code, rec.Body)
	}
	// One active "carol" is left: the name now names it.
	if rec := do(h, "DELETE", "/v1/api-tokens/carol", admin, ""); rec.Code != 204 {
		t.Fatalf("by name: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "DELETE", "/v1/api-tokens/carol", admin, ""); rec.Code != 404 || !strings.Contains(rec.Body.String(), "named by ID") {
		t.Fatalf("a name of revoked tokens only: %d %s", rec.Code, rec.Body)
	}
	for _, id := range ids {
		if ok, _ := a.Store.APITokenActive(ctx, id, time.Now()); ok {
			t.Errorf("token %s still active", id)
		}
	}
	if rec := do(h, "DELETE", "/v1/api-tokens/carol", tok[apiv1.RoleTechnician], ""); rec.Code != 403 {
		t.Fatalf("a technician revoking: %d", rec.Code)
	}
}
