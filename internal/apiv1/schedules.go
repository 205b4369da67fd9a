package apiv1

import "time"

// ScheduleCreate is POST /v1/schedules: a job request made at each fire
// time of Cron (5 fields, or 6 with seconds first) in time zone TZ.
type ScheduleCreate struct {
	Name string    `json:"name"`
	Cron string    `json:"cron"`
	TZ   string    `json:"tz,omitempty"` // default UTC
	Job  JobCreate `json:"job"`          // Job.Window: fire only inside it
}

// Schedule is GET /v1/schedules/{id}.
type Schedule struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Kind      string     `json:"kind"` // job or patch-policy
	Cron      string     `json:"cron"`
	TZ        string     `json:"tz"`
	Window    string     `json:"window,omitempty"` // "SITE/NAME"
	Site      string     `json:"site,omitempty"`   // patch policies
	Reboot    string     `json:"reboot,omitempty"` // patch policies
	Job       JobCreate  `json:"job"`
	Paused    bool       `json:"paused"`
	NextFire  *time.Time `json:"next_fire,omitempty"`
	LastFire  *time.Time `json:"last_fire,omitempty"`
	LastJob   string     `json:"last_job,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
}

// WindowCreate is POST /v1/windows: a site's maintenance window, open
// from each fire time of CronStart (in TZ) for Duration ("2h", "90m").
type WindowCreate struct {
	Name      string `json:"name"`
	Site      string `json:"site"`
	CronStart string `json:"cron_start"`
	Duration  string `json:"duration"`
	TZ        string `json:"tz,omitempty"`
}

// Window is a maintenance window as GET /v1/windows lists it.
type Window struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Site      string     `json:"site"` // "ORG/SITE"
	CronStart string     `json:"cron_start"`
	Duration  string     `json:"duration"`
	TZ        string     `json:"tz"`
	Open      bool       `json:"open"`
	NextOpen  *time.Time `json:"next_open,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
}

// PatchPolicyCreate is POST /v1/patch-policies: install updates of
// Categories ("security", "all", or windowsupdate classifications) on the
// agents of Site each time Window opens.
type PatchPolicyCreate struct {
	Name       string `json:"name,omitempty"` // default "patch SITE"
	Site       string `json:"site"`
	Categories string `json:"categories,omitempty"` // default security
	Window     string `json:"window"`
	Reboot     string `json:"reboot,omitempty"` // ask (default), never, force-in-window
	Target     string `json:"target,omitempty"` // narrows the site's agents
}
