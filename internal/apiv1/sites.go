package apiv1

import "time"

// Organisation groups sites: a managed service provider's customer, a
// company (GET /v1/organisations).
type Organisation struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Sites     int       `json:"sites"`
	CreatedAt time.Time `json:"created_at"`
}

// OrganisationRequest creates an organisation (POST /v1/organisations).
type OrganisationRequest struct {
	Name string `json:"name"`
}

// Site is where agents are (GET /v1/sites lists those the caller reaches).
type Site struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`         // the site's own name
	Organisation string    `json:"organisation"` // its organisation's name
	FullName     string    `json:"full_name"`    // "ORG/SITE"
	Agents       int       `json:"agents"`       // agents that belong to it, revoked ones excluded
	CreatedAt    time.Time `json:"created_at"`
}

// SiteRequest creates a site of an existing organisation (POST /v1/sites).
type SiteRequest struct {
	Organisation string `json:"organisation"` // name or ID
	Name         string `json:"name"`
}

// AgentSiteRequest moves an agent to another site (POST
// /v1/agents/{id}/site; admins only).
type AgentSiteRequest struct {
	Site string `json:"site"`
}

// AllSitesName is how a grant of every site is written in requests and
// answers.
const AllSitesName = "all"
