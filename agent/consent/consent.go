// Package consent decides, by the endpoint's own policy, whether a technician
// may open an interactive session on this machine, and talks to the person at
// the machine about it.
//
// # Modes
//
// The policy has one of three modes:
//
//   - prompt (the default): the user must approve each request. The prompt
//     names the technician, the reason they gave (e.g. a ticket), every
//     capability asked for in plain words and a countdown; no answer before
//     the deadline (Policy.Timeout, or the request's own deadline if earlier)
//     means deny. Several requests may be pending at once; each gets its own
//     answer.
//   - notify: requests are approved at once, and the user is told when a
//     session starts and ends, and can end it.
//   - unattended: requests are approved at once and nobody is told. Meant for
//     servers with nobody at the console; nothing is started for it.
//
// # Backends
//
// How the user is asked (and told) is the policy's backend:
//
//   - "exec:/abs/path": runs that program (no shell) with the request as one
//     JSON object on stdin. Exit status 0 approves, anything else denies (the
//     first line of its stderr is the message). It is killed, with its whole
//     process group, at the deadline. In notify mode it also gets the
//     "started" and "ended" events, whose exit status is ignored. For an
//     organisation's own tooling, and for tests. The JSON names the kind
//     (session, fix, reboot) and the fix; a restart question is answered
//     by a stdout line "choice=now|1h|tonight" (see below).
//   - "web": a page on the loopback interface only, at a URL carrying a random
//     128-bit token, listing pending requests with Approve/Deny and live
//     sessions with "End session". The URL is logged when the agent starts and
//     opened in the user's browser (where one can be found) when a request
//     arrives, or in notify mode a session starts, and no page is open.
//   - "desktop": a native dialog: zenity or kdialog (Linux and other Unix
//     systems with a display), osascript (macOS), a PowerShell popup
//     (Windows, untested); notifications through notify-send where
//     installed (else the dialog tool). The web page is served too, and
//     answers requests as well (the first answer wins), so that a live
//     session can be ended: the "started" notification, sent in prompt mode
//     too, carries its URL.
//   - "tty": a y/N question on the agent's controlling terminal.
//   - "auto" (the default): desktop when a dialog tool and a display exist,
//     else web.
//
// # View only
//
// A session request for the screen (wire.CapDesktop) is answered Allow full
// control, View only (Decision.Choice ChoiceViewOnly) or Deny, through every
// backend (exec: a stdout line "choice=view-only"). With Policy.Desktop
// view-only every approval of it is view only and the prompt offers only
// Allow view only / Deny. An answer with a choice that does not fit the
// request denies it. See viewonly.go.
//
// # Restarts a fix requires
//
// A fix whose plugin manifest or script header declares may_reboot, and
// whose Fix result says reboot_required, has the agent's worker call
// DecideReboot and then ScheduleReboot. The endpoint's policy (Policy.Reboot)
// decides, never the relay:
//
//   - ask (the default): when a user is logged in they are asked, through the
//     policy's backend, "Restart now / In 1 hour / Tonight". No answer (the
//     deadline passed, the dialog was closed, a plain Approve/Deny answer from
//     the web page) means tonight. When nobody is logged in, the machine
//     restarts now. When the question cannot be put at all (unattended mode,
//     the web backend, which has no three-way question, or the helper of the
//     console's session is missing while other users are logged in) it is
//     no answer: tonight.
//   - never: the machine is never restarted; the result says a restart is
//     pending.
//   - force: restart now even with users logged in, after telling them
//     (servers, kiosks).
//
// A choice that the backend failed to obtain (the program could not run, the
// helper went away, the agent is shutting down) restarts nothing: the result
// says a restart is pending and why.
//
// "Tonight" is the next Policy.RebootTonight (default 22:00, local time).
//
// # Is a user logged in
//
// With the helper backend, a user is logged in when a verified helper is
// connected (helpers start at every graphical login). Otherwise the agent
// runs `who` (utmp): an empty list means nobody; if `who` cannot run or
// fails, the agent cannot tell and assumes someone is there (asks). Windows
// has no `who`: someone is assumed present.
//
// # The restart command
//
// Policy.RebootCommand empty: `shutdown -r now`, `shutdown -r +60` or
// `shutdown -r HH:MM` on Linux and macOS, `shutdown /r /t SECONDS` on
// Windows. An absolute path instead names the organisation's own program
// (no shell), run as `PROGRAM CHOICE SECONDS WHEN`: CHOICE is now, 1h or
// tonight, SECONDS the delay in whole seconds, WHEN the restart time in RFC
// 3339. It must schedule the restart and exit 0; its first stderr line
// explains a failure. Like the exec consent program, it must not be
// writable by group or others.
//
// # Where the policy lives
//
// The policy is the file DATA/consent.json in the agent's data directory
// (mode 0600, replaced atomically; a file writable by group or others is
// refused, and so is an exec program). A missing file means the defaults
// (prompt, auto, 60s). The relay cannot change the policy: no message of the
// agent link touches it. Only local commands on the endpoint (run by someone
// who can write the agent's data directory) or a hand edit change it, and
// the agent reads it when it starts. A compromised relay can therefore ask,
// but never skip the question.
//
// # Who decided
//
// Decision.By names the local user when it is known: the exec program's
// "by=NAME", the owner of the browser's connection to the page (read from
// /proc/net/tcp on Linux; "web user" elsewhere), or the user the agent runs
// as for dialogs and the terminal. Otherwise it is ByPolicy (notify,
// unattended), ByTimeout (no answer in time) or ByAgent (the request was
// withdrawn, the agent is closing, or the backend could not ask).
//
// # Hostile text
//
// Text that comes from the technician (their name, the reason) is
// attacker-influenced: it is stripped of control and formatting characters
// (bidirectional overrides included) before anyone sees it, escaped in the
// web page (which also has a strict Content-Security-Policy), passed to
// dialogs as plain text (never markup, never spliced into a script), and the
// reason is left out of desktop notifications.
package consent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Mode is the consent mode of a policy.
type Mode string

// The consent modes.
const (
	ModePrompt     Mode = "prompt"
	ModeNotify     Mode = "notify"
	ModeUnattended Mode = "unattended"
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(s)); m {
	case ModePrompt, ModeNotify, ModeUnattended:
		return m, nil
	}
	return "", fmt.Errorf("consent mode %q: want prompt, notify or unattended", s)
}

// Values of Decision.By that do not name a person.
const (
	// ByPolicy: the mode approved the request without asking (notify, unattended).
	ByPolicy = "policy"
	// ByTimeout: nobody answered before the deadline.
	ByTimeout = "timeout"
	// ByAgent: the agent denied the request without an answer: the request
	// was withdrawn (its context ended), the agent is shutting down, or the
	// backend could not ask.
	ByAgent = "agent"
	// ByNoUser: nobody was logged in at the machine to ask, and the policy's
	// when_no_user decided (deny, allow or notify).
	ByNoUser = "no-user"
	// ByJob: a restart decided by what the job asked (a patch policy's
	// reboot never or force-in-window) within the endpoint's policy.
	ByJob = "job"
)

// Kinds of request.
const (
	// KindSession (the default): a technician asks for an interactive session.
	KindSession = "session"
	// KindFix: a fix (a plugin or script whose manifest declares
	// needs_consent) asks before its Fix step runs. Request.Fix names it.
	KindFix = "fix"
	// KindReboot: a fix that needs a restart asks when it may restart.
	KindReboot = "reboot"
)

// Request is what the user is asked about.
type Request struct {
	SessionID    string
	AgentID      string
	Hostname     string // this machine's name as the technician sees it; os.Hostname if empty
	Technician   string
	Reason       string
	Capabilities []string // wire.CapShell, ...
	// Deadline is when no answer means deny. Zero means Policy.Timeout from
	// now; a later deadline is cut to Policy.Timeout from now.
	Deadline time.Time
	// Kind is what is asked: KindSession (when empty), KindFix or KindReboot.
	Kind string
	// Fix describes the fix for KindFix and KindReboot, as the user reads it,
	// e.g. "script clear-browser-cache 1.2: Clears the browser caches".
	Fix string
	// Tonight is, for KindReboot, the clock time of a "tonight" restart
	// ("22:00"); DecideReboot fills it from the policy.
	Tonight string
	// JobReboot is, for KindReboot, what the job asks (wire.RebootAsk,
	// RebootNever, RebootForceInWindow; "" as ask) and WindowEnd when its
	// maintenance window closes. See DecideReboot for how the endpoint's
	// policy weighs it.
	JobReboot string
	WindowEnd time.Time
	// OnAsk, when set, is called once (on a goroutine of Decide's) when a
	// person is being asked, with the deadline and who is asked (e.g. "the
	// user at pc-042", "alice at pc-042"). It is not called for decisions the
	// policy makes without asking.
	OnAsk func(deadline time.Time, asking string)

	desktop string // what the prompt offers for the screen (desktopOffer); set by Decide
}

// kind returns r.Kind, KindSession when empty.
func (r Request) kind() string {
	if r.Kind == "" {
		return KindSession
	}
	return r.Kind
}

// Decision is the outcome of a Request.
type Decision struct {
	Approved bool
	Mode     Mode
	Backend  string    // "exec", "web", "desktop", "tty", or "" for unattended
	By       string    // the local user name when known, else ByPolicy, ByTimeout or ByAgent
	Message  string    // e.g. "denied by the user", "no answer within 60s"
	At       time.Time // when the decision was made
	// Choice is the restart the user chose for a KindReboot request
	// (ChoiceNow, ChoiceHour, ChoiceTonight); for a session request that
	// asks for wire.CapDesktop, ChoiceViewOnly when the user (or the
	// policy) allowed the screen to be seen but not controlled; "" otherwise.
	Choice string
}

// ChoiceViewOnly narrows an approved wire.CapDesktop to wire.CapDesktopView
// (Decision.Choice of a session request).
const ChoiceViewOnly = "view-only"

// Live is a running session as the user sees it.
type Live struct {
	ID           string
	Technician   string
	Reason       string
	Capabilities []string
	Started      time.Time
}

// Sessions is what the web page needs to list and end live sessions; the
// agent's session manager implements it. End is called with the name of the
// local user who ended the session (or "web user" when unknown).
type Sessions interface {
	Live() []Live
	End(id, by string) error
}

// Consent asks for and records the user's consent. It is safe for
// concurrent use. New starts nothing that outlives Close.
type Consent struct {
	policy   Policy
	kind     string // resolved backend: exec, web, desktop, tty; "" when unattended
	sessions Sessions
	log      zerolog.Logger
	hostname string
	osUser   string // the user the agent runs as

	exec    *execBackend
	desktop *desktopBackend
	tty     *ttyBackend
	web     *webServer
	helper  *helperServer
	opts    options

	mu      sync.Mutex
	pending map[string]*pending // by session ID
	order   []string            // pending session IDs, oldest first
	lives   map[string]liveInfo // from Started, until Ended
	events  []pageEvent         // recent events for the web page, newest last
	agentID string              // the AgentID of the latest request, for session events
	grants  []grant             // remembered approvals (Policy.Remember), oldest first
	closed  bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// liveInfo is what Consent remembers of a started session.
type liveInfo struct {
	Live
	agentID, hostname string
}

// options are test hooks; New uses the zero value.
type options struct {
	tty         io.ReadWriteCloser                          // tty backend: use this instead of /dev/tty
	openBrowser func(url string)                            // web backend: replaces opening the user's browser
	sessions    sessionSource                               // helper backend: replaces the system's sessions
	onHelper    func(user, session string)                  // helper backend: called when a helper is verified
	loggedIn    func(ctx context.Context) ([]string, error) // replaces `who` (WithLoggedIn)
}

// Option changes how New sets up a Consent.
type Option func(*options)

// WithLoggedIn replaces `who` as the way to tell whether a user is logged
// in at the machine (restarts a fix requires, when the backend is not the
// helper): f lists the logged-in users; an error means it cannot tell.
// For agents that know better, and for tests (which cannot log a user in).
func WithLoggedIn(f func(ctx context.Context) ([]string, error)) Option {
	return func(o *options) { o.loggedIn = f }
}

// New checks the policy and starts its backend: the web server for the web
// and desktop backends, the terminal reader for tty. Nothing is started in
// unattended mode. sessions may be nil when live sessions cannot be listed or
// ended (the web page then shows those it was told about, without End).
func New(p Policy, sessions Sessions, log zerolog.Logger, opts ...Option) (*Consent, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return newConsent(p, sessions, log, o)
}

func newConsent(p Policy, sessions Sessions, log zerolog.Logger, o options) (*Consent, error) {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	if p.RebootCommand != "" {
		if err := checkProgram("reboot_command", p.RebootCommand); err != nil {
			return nil, err
		}
	}
	p.Backend, _ = ParseBackend(p.Backend)
	c := &Consent{
		policy:   p,
		sessions: sessions,
		log:      log.With().Str("component", "consent").Logger(),
		osUser:   currentUser(),
		opts:     o,
		pending:  map[string]*pending{},
		lives:    map[string]liveInfo{},
		done:     make(chan struct{}),
	}
	c.hostname, _ = os.Hostname()
	if p.Mode == ModeUnattended {
		c.log.Info().Str("mode", string(p.Mode)).Msg("consent: unattended mode, sessions are approved without asking anyone")
		return c, nil
	}
	if err := c.startBackend(); err != nil {
		c.stop()
		return nil, err
	}
	c.log.Info().Str("mode", string(p.Mode)).Str("backend", c.kind).Dur("timeout", p.Timeout).Msg("consent ready")
	return c, nil
}

// startBackend resolves "auto" and starts what the backend needs.
func (c *Consent) startBackend() error {
	b := c.policy.Backend
	switch {
	case strings.HasPrefix(b, execPrefix):
		eb, err := newExecBackend(strings.TrimPrefix(b, execPrefix), c.osUser)
		if err != nil {
			return err
		}
		c.kind, c.exec = "exec", eb
		return nil
	case b == "tty":
		tb, err := newTTYBackend(c.opts.tty, c.osUser)
		if err != nil {
			return err
		}
		c.kind, c.tty = "tty", tb
		c.wg.Add(1)
		go func() { defer c.wg.Done(); tb.readLines() }()
		return nil
	case b == "helper":
		return c.startHelper()
	case b == "desktop", b == "auto":
		tool, err := findDialog()
		if err != nil && b == "desktop" {
			return err
		}
		if err == nil {
			c.kind, c.desktop = "desktop", &desktopBackend{tool: tool, user: c.osUser}
			return c.startWeb(false)
		}
		if b == "auto" && autoHelper() {
			c.log.Debug().Err(err).Msg("consent: no display of its own (a service): asking through the helpers in users' sessions")
			return c.startHelper()
		}
		c.log.Debug().Err(err).Msg("consent: no desktop dialog, using the web page")
		fallthrough
	default: // "web"
		c.kind = "web"
		return c.startWeb(true)
	}
}

// startHelper listens for the helpers in users' sessions.
func (c *Consent) startHelper() error {
	src := c.opts.sessions
	if src == nil {
		src = systemSessions()
	}
	h, err := listenHelpers(c, c.policy.HelperSocket, src)
	if err != nil {
		return err
	}
	c.kind, c.helper = "helper", h
	c.log.Info().Str("socket", c.policy.HelperSocket).Str("ask", c.policy.Ask).Str("when_no_user", c.policy.WhenNoUser).
		Msg("consent: waiting for helpers in users' sessions (patchbay-agent helper, started at login)")
	return nil
}

// autoHelper reports whether "auto" means the helper backend: an agent
// running as root (a service) on Linux or macOS.
func autoHelper() bool {
	return (runtime.GOOS == "linux" || runtime.GOOS == "darwin") && os.Geteuid() == 0
}

// noUser decides a request when nobody is logged in to ask, by the policy's
// WhenNoUser.
func (c *Consent) noUser() Decision {
	d := Decision{Backend: c.kind, By: ByNoUser}
	switch c.policy.WhenNoUser {
	case NoUserAllow:
		d.Approved, d.Message = true, "approved by policy: nobody is logged in at the machine (when_no_user: allow)"
	case NoUserNotify:
		d.Approved, d.Message = true, "approved by policy: nobody is logged in at the machine; whoever logs in is shown the session (when_no_user: notify)"
	default:
		d.Message = "nobody is logged in at the machine to ask (policy when_no_user: deny)"
	}
	return d
}

// Decide decides on req by the policy. It always returns a decision: in
// prompt mode it blocks until the user answers, the deadline passes, ctx ends
// (deny, By ByAgent) or Close is called (deny).
func (c *Consent) Decide(ctx context.Context, req Request) Decision {
	req = c.cleanRequest(req)
	if req.AgentID != "" {
		c.mu.Lock()
		c.agentID = req.AgentID
		c.mu.Unlock()
	}
	req.desktop = c.desktopOffer(req)
	d := c.settleDesktop(req, c.decide(ctx, req))
	d.Mode = c.policy.Mode
	if d.At.IsZero() {
		d.At = time.Now()
	}
	c.log.Info().Str("session_id", req.SessionID).Str("technician", req.Technician).Strs("capabilities", req.Capabilities).
		Bool("approved", d.Approved).Str("choice", d.Choice).Str("mode", string(d.Mode)).Str("backend", d.Backend).
		Str("by", d.By).Str("decision", d.Message).Msg("consent decision")
	return d
}

func (c *Consent) decide(ctx context.Context, req Request) Decision {
	reboot := req.kind() == KindReboot // DecideReboot applies the reboot policy first
	switch {
	case reboot:
	case c.policy.Mode == ModeUnattended:
		return Decision{Approved: true, By: ByPolicy, Message: "approved by policy (unattended mode)"}
	case c.policy.Mode == ModeNotify:
		return Decision{Approved: true, Backend: c.kind, By: ByPolicy, Message: "approved by policy (notify mode: the user is told)"}
	}
	now := time.Now()
	if d, ok := c.granted(req, now); ok && !reboot {
		return d // (a grant never covers a restart)
	}
	deadline := now.Add(c.policy.Timeout)
	if !req.Deadline.IsZero() && req.Deadline.Before(deadline) {
		deadline = req.Deadline
	}
	req.Deadline = deadline
	window := deadline.Sub(now)
	deny := func(by, msg string) Decision { return Decision{Backend: c.kind, By: by, Message: msg} }
	asking := "the user at " + req.Hostname
	if c.helper != nil {
		if asking = c.helper.asking(req.Hostname); asking == "" {
			return c.noUser()
		}
	}

	if c.web != nil && c.kind == "web" {
		c.log.Info().Str("session_id", req.SessionID).Str("url", c.web.url).Msg("consent: asking in the web page")
		c.web.openIfUnwatched(c) // before the page can see the request (and count as watching)
	}
	p, err := c.addPending(req)
	if err != nil {
		return deny(ByAgent, err.Error())
	}
	defer c.removePending(p)
	if req.OnAsk != nil {
		req.OnAsk(deadline, asking)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	askDone := make(chan struct{})
	if a := c.asker(); a == nil || !c.goOwned(func() {
		defer close(askDone)
		if ans := a.ask(ctx, req); ctx.Err() == nil {
			p.answer(ans) // not after the deadline: a killed program's exit is no answer
		}
	}) {
		close(askDone) // the web page answers, or Close was called
	}
	var ans answer
	var answered bool
	select {
	case ans = <-p.ch:
		answered = true
	case <-ctx.Done():
	case <-c.done:
	}
	if !answered { // an answer that raced the deadline still counts
		select {
		case ans = <-p.ch:
			answered = true
		default:
		}
	}
	withdrawn := ctx.Err() != nil && time.Now().Before(deadline)
	cause := context.Cause(ctx)
	cancel()  // stop the asker (kills a dialog or program still running)
	<-askDone // and wait until it is gone
	switch {
	case answered && ans.failed:
		return deny(ByAgent, ans.message)
	case answered:
		if ans = checkChoice(req, ans); ans.approved && !reboot {
			c.remember(req, ans.by, ans.choice, time.Now())
		}
		return Decision{Approved: ans.approved, Backend: c.kind, By: ans.by, Message: ans.message, Choice: ans.choice}
	case isClosed(c.done):
		return deny(ByAgent, "agent shutting down before an answer")
	case withdrawn:
		return deny(ByAgent, fmt.Sprintf("request withdrawn before an answer (%v)", cause))
	default:
		return deny(ByTimeout, "no answer within "+formatWindow(window))
	}
}

// asker returns the backend that actively asks, nil for the web page
// (which answers through the pending registry).
func (c *Consent) asker() asker {
	switch {
	case c.helper != nil:
		return c.helper
	case c.exec != nil:
		return c.exec
	case c.desktop != nil:
		return c.desktop
	case c.tty != nil:
		return c.tty
	}
	return nil
}

// Started tells the user that a session started. In notify mode the backend
// always tells them; the web page lists it with an End button in any mode;
// the desktop backend also notifies in prompt mode (with the page's URL).
// Call Ended for every Started.
func (c *Consent) Started(l Live) {
	l.Technician, l.Reason = cleanText(l.Technician, maxTechnician), cleanText(l.Reason, maxReason)
	if l.Started.IsZero() {
		l.Started = time.Now()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	info := liveInfo{Live: l, agentID: c.agentID, hostname: c.hostname}
	c.lives[l.ID] = info
	c.addEventLocked(fmt.Sprintf("%s started a session (%s)", l.Technician, capList(l.Capabilities)))
	c.mu.Unlock()
	c.log.Info().Str("session_id", l.ID).Str("technician", l.Technician).Msg("consent: session started")
	if c.helper != nil {
		c.helper.broadcastLive()
	}
	if !c.tellsEvents() {
		return
	}
	c.notify(event{kind: "started", live: info})
	if c.web != nil && c.kind == "web" {
		c.web.openIfUnwatched(c)
	}
}

// Ended tells the user that a session ended, and why: the backend in the
// same cases as Started, the web page's recent list always.
func (c *Consent) Ended(id, reason string) {
	reason = cleanText(reason, maxReason)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	info, ok := c.lives[id]
	delete(c.lives, id)
	if !ok {
		info = liveInfo{Live: Live{ID: id}, agentID: c.agentID, hostname: c.hostname}
	}
	who := info.Technician
	if who == "" {
		who = "a technician"
	}
	text := fmt.Sprintf("the session of %s ended", who)
	if reason != "" {
		text += ": " + reason
	}
	c.addEventLocked(text)
	c.mu.Unlock()
	c.log.Info().Str("session_id", id).Str("reason", reason).Msg("consent: session ended")
	if c.helper != nil {
		c.helper.broadcastLive()
	}
	if c.tellsEvents() {
		c.notify(event{kind: "ended", live: info, endReason: reason})
	}
}

// tellsEvents reports whether the backend is told that sessions start and
// end: always in notify mode, and in prompt mode for the desktop backend,
// whose notification carries the page's URL, the way to end the session.
func (c *Consent) tellsEvents() bool {
	return c.policy.Mode == ModeNotify || c.policy.Mode == ModePrompt && c.desktop != nil
}

// notifier returns the backend that tells the user about events without
// waiting for an answer; nil for the web page and the helper (which show
// events themselves).
func (c *Consent) notifier() notifier {
	switch {
	case c.exec != nil:
		return c.exec
	case c.desktop != nil:
		return c.desktop
	case c.tty != nil:
		return c.tty
	}
	return nil
}

// notify hands an event to the backend without waiting for the user.
func (c *Consent) notify(ev event) {
	n := c.notifier()
	if n == nil {
		return // the web page shows it
	}
	if c.web != nil {
		ev.url = c.web.url
	}
	c.goOwned(func() {
		ctx, cancel := c.closeContext(notifyTimeout)
		defer cancel()
		if err := n.notify(ctx, ev); err != nil {
			c.log.Warn().Err(err).Str("session_id", ev.live.ID).Str("event", ev.kind).Msg("consent: could not tell the user")
		}
	})
}

// goOwned runs f on a goroutine that Close waits for; it reports false (and
// does not run f) once Close has been called.
func (c *Consent) goOwned(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// notifyTimeout bounds a notification program.
const notifyTimeout = 15 * time.Second

// URL returns the web page's URL, token included, or "" when no page is
// served. Whoever has it can answer requests: show it only to the user.
func (c *Consent) URL() string {
	if c.web == nil {
		return ""
	}
	return c.web.url
}

// Pending lists the requests waiting for an answer, oldest first.
func (c *Consent) Pending() []Request {
	return c.snapshot().pending
}

// AnswerLocal answers a pending request on behalf of a local administrator
// (patchbay-agent sessions approve|deny, through the agent's control socket,
// which only the agent's account can use). The first answer wins, whoever
// gives it.
func (c *Consent) AnswerLocal(id string, approve bool, by string) error {
	a := answer{approved: approve, by: by, message: "denied by a local administrator (" + by + ")"}
	if approve {
		a.message = "approved by a local administrator (" + by + ")"
	}
	if err := c.answerPending(id, a); err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	return nil
}

// Close denies pending requests, stops the web server and the terminal
// reader, and waits for every goroutine and program it started.
func (c *Consent) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	return c.stop()
}

// stop releases what startBackend made.
func (c *Consent) stop() error {
	var errs []error
	if c.helper != nil {
		errs = append(errs, c.helper.close())
	}
	if c.web != nil {
		errs = append(errs, c.web.close())
	}
	if c.tty != nil {
		errs = append(errs, c.tty.close())
	}
	c.wg.Wait()
	return errors.Join(errs...)
}

// closeContext returns a context that ends after d or when c is closed.
func (c *Consent) closeContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// cleanRequest strips control and formatting characters from the request's
// text and fills in the hostname.
func (c *Consent) cleanRequest(r Request) Request {
	r.SessionID = cleanText(r.SessionID, 64)
	r.AgentID = cleanText(r.AgentID, 64)
	r.Technician = cleanText(r.Technician, maxTechnician)
	r.Reason = cleanText(r.Reason, maxReason)
	if r.Hostname == "" {
		r.Hostname = c.hostname
	}
	r.Hostname = cleanText(r.Hostname, 255)
	caps := make([]string, 0, len(r.Capabilities))
	for _, s := range r.Capabilities {
		caps = append(caps, cleanText(s, 32))
	}
	r.Capabilities = caps
	return r
}

// currentUser names the user the agent runs as.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return "local user"
}
