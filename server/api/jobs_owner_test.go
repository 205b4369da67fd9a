package api

import (
	"testing"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

func TestOwnJob(t *testing.T) {
	job := store.Job{CreatedByToken: "tok-a", CreatedByUser: "user-a"}
	legacy := store.Job{} // from before owners were stored
	for _, tt := range []struct {
		name string
		tok  store.APIToken
		job  store.Job
		want bool
	}{
		{"admin, any job", store.APIToken{ID: "x", Role: apiv1.RoleAdmin}, job, true},
		{"admin, legacy job", store.APIToken{ID: "x", Role: apiv1.RoleAdmin}, legacy, true},
		{"the token that started it", store.APIToken{ID: "tok-a", Role: apiv1.RoleTechnician}, job, true},
		{"another token of the same user", store.APIToken{ID: "tok-b", UserID: "user-a", Role: apiv1.RoleTechnician}, job, true},
		{"another technician", store.APIToken{ID: "tok-c", UserID: "user-c", Role: apiv1.RoleTechnician}, job, false},
		{"a token without a user, legacy job", store.APIToken{ID: "tok-d", Role: apiv1.RoleTechnician}, legacy, false},
	} {
		if got := ownJob(caller{tok: tt.tok}, tt.job); got != tt.want {
			t.Errorf("%s: ownJob = %v, want %v", tt.name, got, tt.want)
		}
	}
}
