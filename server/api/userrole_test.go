package api

import (
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// A local user's role changes at once for their live session (lowered),
// a single sign-on user's role is refused, and an admin cannot lower their
// own.
func TestUserRoleAndSites(t *testing.T) {
	_, h, tok, _ := userAPI(t)
	admin := tok[apiv1.RoleAdmin]
	var u apiv1.User
	if rec := call(t, h, home, "POST", "/v1/users", admin, apiv1.UserRequest{Name: "bob", Role: "technician", Password: "a long enough password 1"}, &u); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if len(u.Sites) != 1 || u.Sites[0] != "default/default" {
		t.Errorf("new user's sites = %v, want the default site", u.Sites)
	}
	s, rec := login(t, h, home, "bob", "a long enough password 1", "")
	if rec.Code != 200 || s.Role != "technician" || len(s.Sites) != 1 || s.Sites[0] != "default/default" {
		t.Fatalf("login: %d %+v", rec.Code, s)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/role", admin, apiv1.UserRoleRequest{Role: "boss"}, nil); rec.Code != 400 {
		t.Errorf("unknown role: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/role", s.Token, apiv1.UserRoleRequest{Role: "admin"}, nil); rec.Code != 403 {
		t.Errorf("a technician promoting themselves: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/role", admin, apiv1.UserRoleRequest{Role: "viewer"}, &u); rec.Code != 200 || u.Role != "viewer" {
		t.Fatalf("lower: %d %s", rec.Code, rec.Body)
	}
	var who apiv1.Whoami
	if rec := call(t, h, home, "GET", "/v1/whoami", s.Token, nil, &who); rec.Code != 200 || who.Role != "viewer" {
		t.Errorf("bob's live session after the change: %d %+v, want role viewer", rec.Code, who)
	}
	if rec := call(t, h, home, "POST", "/v1/jobs", s.Token, apiv1.JobCreate{Plugin: "sysinfo", Target: "all"}, nil); rec.Code != 403 {
		t.Errorf("a viewer creating a job: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/sites", admin, apiv1.UserSitesRequest{Sites: []string{"nowhere"}}, nil); rec.Code != 404 {
		t.Errorf("grant of an unknown site: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/sites", admin, apiv1.UserSitesRequest{}, nil); rec.Code != 400 {
		t.Errorf("no sites: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "POST", "/v1/users/bob/sites", admin, apiv1.UserSitesRequest{Sites: []string{"all"}}, &u); rec.Code != 200 || len(u.Sites) != 1 || u.Sites[0] != "all" {
		t.Errorf("grant all: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, home, "GET", "/v1/whoami", s.Token, nil, &who); rec.Code != 200 || len(who.Sites) != 1 || who.Sites[0] != "all" {
		t.Errorf("bob's sites after the grant: %d %+v", rec.Code, who)
	}
}
