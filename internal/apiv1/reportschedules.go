package apiv1

import "time"

// ReportScheduleCreate is POST /v1/reports/schedules: mail the report of
// the Period before each fire time of Cron (in TZ) for Site ("" every site
// the owner reaches) to To (default: the route's recipients) through the
// SMTP server of alert route Route (an ID or unique prefix; "" the one SMTP
// route that takes the site's alerts), attached as Format.
type ReportScheduleCreate struct {
	Name   string   `json:"name"`
	Cron   string   `json:"cron"`
	TZ     string   `json:"tz,omitempty"`     // default UTC
	Site   string   `json:"site,omitempty"`   // a site reference
	Period string   `json:"period,omitempty"` // 7d, 1w, 24h, 1mo; default 7d
	To     []string `json:"to,omitempty"`
	Route  string   `json:"route,omitempty"`
	Format string   `json:"format,omitempty"` // csv (default), json or html
}

// ReportSchedule is one report schedule (GET /v1/reports/schedules).
type ReportSchedule struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Cron      string     `json:"cron"`
	TZ        string     `json:"tz"`
	Site      string     `json:"site,omitempty"` // "" every site the owner reaches
	Period    string     `json:"period"`
	To        []string   `json:"to,omitempty"` // none: the route's
	Route     string     `json:"route"`
	Format    string     `json:"format"`
	Paused    bool       `json:"paused"`
	NextFire  *time.Time `json:"next_fire,omitempty"`
	LastFire  *time.Time `json:"last_fire,omitempty"`
	LastError string     `json:"last_error,omitempty"` // why the last firing sent nothing
	LastSend  *MailSend  `json:"last_send,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
}

// Mail send states.
const (
	MailQueued = "queued" // not tried yet, or being retried after a failure (Error)
	MailSent   = "sent"
	MailFailed = "failed" // given up (Error says why)
)

// MailSend is the state of the last report a schedule mailed.
type MailSend struct {
	ID       string `json:"id"` // the delivery
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}
