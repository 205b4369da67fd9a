package sso

import (
	"fmt"
	"slices"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// Refusal is a sign-in the provider vouched for but Patchbay does not
// admit. Its message is shown to the person; Reason is a short word for
// the audit record.
type Refusal struct {
	Reason  string // "domain", "group", "role", "disabled", "name"
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Decide admits id or refuses it, and returns the Patchbay role its groups
// map to: allowed domains first (a verified email in one of them), then
// allowed groups (at least one), then the role map (the highest role of
// the person's mapped groups; none mapped: refused, naming the groups seen).
func (p *Provider) Decide(id Identity) (string, error) {
	c := p.cfg
	if len(c.AllowedDomains) > 0 {
		_, domain, ok := strings.Cut(strings.ToLower(id.Email), "@")
		switch {
		case !ok || domain == "":
			return "", &Refusal{"domain", fmt.Sprintf("sign-in refused: the identity provider sent no email address, and this relay admits only addresses in %s: ask your IT team to release the email claim to Patchbay", strings.Join(c.AllowedDomains, ", "))}
		case !id.EmailVerified:
			return "", &Refusal{"domain", fmt.Sprintf("sign-in refused: the identity provider has not verified the email %s (email_verified is not true): verify it there, then sign in again", id.Email)}
		case !slices.Contains(c.AllowedDomains, domain):
			return "", &Refusal{"domain", fmt.Sprintf("sign-in refused: %s is not in a domain this relay admits (%s)", id.Email, strings.Join(c.AllowedDomains, ", "))}
		}
	}
	seen := "none"
	if len(id.Groups) > 0 {
		seen = strings.Join(id.Groups, ", ")
	} else if !id.GroupsFound {
		seen = fmt.Sprintf("none: the identity provider sent no %q claim", c.GroupsClaim)
	}
	if len(c.AllowedGroups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(c.AllowedGroups, g) }) {
		return "", &Refusal{"group", fmt.Sprintf("sign-in refused: none of your groups is admitted here (your groups: %s; admitted: %s): ask an admin to add you to one", seen, strings.Join(c.AllowedGroups, ", "))}
	}
	role := ""
	for _, g := range id.Groups {
		if r, ok := c.RoleMap[g]; ok && apiv1.RoleRank(r) > apiv1.RoleRank(role) {
			role = r
		}
	}
	if role == "" {
		return "", &Refusal{"role", fmt.Sprintf("sign-in refused: none of your groups maps to a Patchbay role (your groups: %s; mapped: %s): ask an admin to add you to a mapped group", seen, strings.Join(mapped(c.RoleMap), ", "))}
	}
	return role, nil
}

func mapped(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}
