package consent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/backoff"
)

// HelperConfig configures RunHelper, the process in a user's graphical
// session that shows the service agent's prompts.
type HelperConfig struct {
	Socket  string // the service's helper socket; default DefaultHelperSocket
	Session string // the session claimed; default ClaimSession()
	User    string // the user claimed; default the user this process runs as
	Version string
	Log     zerolog.Logger
	// Idle, when set, is called when the last prompt, notice or indicator
	// has gone (the helper gives memory back then).
	Idle func()
}

// ErrHelperRefused wraps the service's refusal of a helper's claim; RunHelper
// does not retry it.
var ErrHelperRefused = errors.New("the agent refused this helper")

// indicatorTitle is the title of the live-session indicator window.
const indicatorTitle = "Patchbay: remote session in progress"

// indicatorReshow is how long a closed indicator stays away while its
// session is still live.
const indicatorReshow = 10 * time.Second

// RunHelper connects to the service agent and shows its prompts and live
// sessions in this session until ctx ends. It reconnects (with backoff) when
// the agent restarts; it returns at once when the agent refuses its claim
// (ErrHelperRefused) or there is no dialog tool to show anything with.
func RunHelper(ctx context.Context, cfg HelperConfig) error {
	if cfg.Socket == "" {
		cfg.Socket = DefaultHelperSocket
	}
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	if cfg.Session == "" {
		s, err := ClaimSession()
		if err != nil {
			return err
		}
		cfg.Session = s
	}
	tool, err := findDialog()
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	b := backoff.Backoff{Base: time.Second, Max: 30 * time.Second}
	for {
		connected, err := runHelperOnce(ctx, cfg, tool)
		if errors.Is(err, ErrHelperRefused) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if connected {
			b.Reset()
		}
		cfg.Log.Warn().Err(err).Str("socket", cfg.Socket).Msg("helper: lost the agent; reconnecting")
		if b.Wait(ctx) != nil {
			return nil
		}
	}
}

// helperClient is one connection's state. Its goroutines (one per prompt
// and per indicator) are owned by runHelperOnce, which waits for them.
type helperClient struct {
	cfg  HelperConfig
	tool *dialogTool
	conn io.ReadWriteCloser
	wmu  sync.Mutex // serialises writes

	mu         sync.Mutex
	prompts    map[string]context.CancelFunc
	indicators map[string]context.CancelFunc
	active     int // prompts, notices and indicators showing
	wg         sync.WaitGroup
}

// busy counts a prompt, notice or indicator in (1) or out (-1); when the
// last one goes, the helper is idle again.
func (c *helperClient) busy(d int) {
	c.mu.Lock()
	c.active += d
	idle := c.active == 0 && d < 0
	c.mu.Unlock()
	if idle && c.cfg.Idle != nil {
		c.cfg.Idle()
	}
}

// runHelperOnce serves one connection; connected reports whether the
// service welcomed it.
func runHelperOnce(ctx context.Context, cfg HelperConfig, tool *dialogTool) (connected bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", cfg.Socket)
	if err != nil {
		return false, fmt.Errorf("connect to the agent at %s: %w (is patchbay-agent running with --consent-backend helper?)", cfg.Socket, err)
	}
	return runHelperConn(ctx, cfg, tool, conn)
}

// RunHelperStdio serves the protocol on standard input and output, for a
// helper the service launched itself (Windows: in the user's session, with
// its pipes as stdio). It returns when the service closes the pipes.
func RunHelperStdio(ctx context.Context, cfg HelperConfig) error {
	if cfg.User == "" {
		cfg.User = currentUser()
	}
	tool, err := findDialog()
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	_, err = runHelperConn(ctx, cfg, tool, stdio{os.Stdin, os.Stdout})
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// stdio is standard input and output as one connection.
type stdio struct {
	in  *os.File
	out *os.File
}

func (s stdio) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdio) Close() error                { return errors.Join(s.in.Close(), s.out.Close()) }

// setDeadline sets conn's read or write deadline where it has one (a
// socket); pipes on some systems have none.
func setDeadline(conn io.ReadWriteCloser, read bool, t time.Time) {
	if read {
		if d, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(t)
		}
		return
	}
	if d, ok := conn.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(t)
	}
}

// runHelperConn speaks the helper protocol on conn until it ends.
func runHelperConn(ctx context.Context, cfg HelperConfig, tool *dialogTool, conn io.ReadWriteCloser) (connected bool, err error) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := &helperClient{cfg: cfg, tool: tool, conn: conn, prompts: map[string]context.CancelFunc{}, indicators: map[string]context.CancelFunc{}}
	if err := c.write(helperMsg{Type: helperHello, User: cfg.User, Session: cfg.Session, Display: displayName(cfg.Session), Version: cfg.Version}); err != nil {
		return false, err
	}
	r := bufio.NewReaderSize(conn, 4096)
	setDeadline(conn, true, time.Now().Add(helperHelloWait))
	m, err := readHelperMsg(r)
	if err != nil {
		return false, fmt.Errorf("read the agent's welcome: %w", err)
	}
	switch m.Type {
	case helperRefused:
		return false, fmt.Errorf("%w: %s", ErrHelperRefused, cleanText(m.Error, 500))
	case helperWelcome:
	default:
		return false, fmt.Errorf("agent sent %q before welcome", m.Type)
	}
	setDeadline(conn, true, time.Time{})
	cfg.Log.Info().Str("user", cfg.User).Str("session", cfg.Session).Bool("console", m.Console).Msg("helper: connected to the agent")

	sessCtx, cancelAll := context.WithCancel(ctx)
	defer func() {
		cancelAll()
		c.wg.Wait()
	}()
	for {
		m, err := readHelperMsg(r)
		if err != nil {
			return true, fmt.Errorf("read from the agent: %w", err)
		}
		switch m.Type {
		case helperAsk:
			c.prompt(sessCtx, m)
		case helperCancel:
			c.mu.Lock()
			if cancel := c.prompts[m.ID]; cancel != nil {
				cancel()
			}
			c.mu.Unlock()
		case helperLive:
			c.live(sessCtx, m.Sessions)
		case helperNotice:
			c.notice(sessCtx, m.Text)
		}
	}
}

func (c *helperClient) write(m helperMsg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	setDeadline(c.conn, false, time.Now().Add(helperWriteWait))
	_, err := c.conn.Write(encodeHelperMsg(m))
	return err
}

// prompt shows a request until the user answers, the deadline passes or the
// service cancels it.
func (c *helperClient) prompt(ctx context.Context, m helperMsg) {
	req := m.Request.toRequest(m.ID, m.Deadline)
	pctx, cancel := context.WithDeadline(ctx, m.Deadline)
	c.mu.Lock()
	if old := c.prompts[m.ID]; old != nil {
		old()
	}
	c.prompts[m.ID] = cancel
	c.mu.Unlock()
	c.wg.Add(1)
	c.busy(1)
	go func() {
		defer c.wg.Done()
		defer c.busy(-1)
		defer func() {
			cancel()
			c.mu.Lock()
			delete(c.prompts, m.ID) // a newer prompt of the same ID replaced no one: IDs are unique
			c.mu.Unlock()
		}()
		d := desktopBackend{tool: c.tool, user: c.cfg.User}
		ans := d.ask(pctx, req)
		switch {
		case pctx.Err() != nil:
		case ans.failed:
			c.cfg.Log.Error().Str("id", m.ID).Str("error", ans.message).Msg("helper: could not show the prompt")
		default:
			if err := c.write(helperMsg{Type: helperAnswer, ID: m.ID, Approved: ans.approved, Choice: ans.choice}); err != nil {
				c.cfg.Log.Warn().Err(err).Msg("helper: could not send the answer")
			}
		}
	}()
}

// notice tells the user something (the machine restarts now), without
// waiting for them: a notification where the tool has one.
func (c *helperClient) notice(ctx context.Context, text string) {
	text = cleanText(text, 2048)
	if c.tool.notify == nil {
		c.cfg.Log.Warn().Str("tool", c.tool.name).Str("text", text).Msg("helper: this dialog tool cannot notify")
		return
	}
	c.wg.Add(1)
	c.busy(1)
	go func() {
		defer c.wg.Done()
		defer c.busy(-1)
		nctx, cancel := context.WithTimeout(ctx, notifyTimeout)
		defer cancel()
		args, env := c.tool.notify("Patchbay: this computer restarts", text)
		if res := runProgram(nctx, c.tool.notifyPath, args, withEnv(env), nil); res.err != nil || res.exit != 0 {
			c.cfg.Log.Warn().Err(res.err).Str("state", res.state).Msg("helper: could not show the notice")
		}
	}()
}

// live starts an indicator for each new live session and takes down those
// of sessions that ended.
func (c *helperClient) live(ctx context.Context, sessions []Live) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, l := range sessions {
		l.ID = cleanText(l.ID, 64)
		seen[l.ID] = true
		if c.indicators[l.ID] != nil {
			continue
		}
		ictx, cancel := context.WithCancel(ctx)
		c.indicators[l.ID] = cancel
		c.wg.Add(1)
		c.active++ // c.mu is held
		go func() {
			defer c.wg.Done()
			defer c.busy(-1)
			c.indicate(ictx, l)
		}()
	}
	for id, cancel := range c.indicators {
		if !seen[id] {
			cancel()
			delete(c.indicators, id)
		}
	}
}

// indicate shows l's indicator until its session ends. End session asks the
// service to end it; a window closed otherwise comes back after a while.
func (c *helperClient) indicate(ctx context.Context, l Live) {
	if c.tool.indicator == nil {
		c.cfg.Log.Warn().Str("tool", c.tool.name).Msg("helper: this dialog tool has no live-session indicator")
		return
	}
	for ctx.Err() == nil {
		args, env := c.tool.indicator(indicatorTitle, indicatorText(l, time.Now()))
		res := runProgram(ctx, c.tool.path, args, withEnv(env), nil)
		if ctx.Err() != nil {
			return
		}
		wait := indicatorReshow
		switch {
		case res.err != nil:
			c.cfg.Log.Error().Err(res.err).Msg("helper: could not show the live-session indicator")
			wait = 3 * indicatorReshow
		case res.exit == 0:
			c.cfg.Log.Info().Str("session_id", l.ID).Msg("helper: the user pressed End session")
			if err := c.write(helperMsg{Type: helperEnd, ID: l.ID}); err != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// indicatorText says who is connected, since when, and what they can do.
func indicatorText(l Live, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Technician %s is connected to this computer since %s (%s).\n\n", orSomeone(cleanText(l.Technician, maxTechnician)),
		l.Started.Local().Format("15:04:05"), now.Sub(l.Started).Round(time.Second))
	fmt.Fprintf(&b, "They can %s.\n", capList(l.Capabilities))
	if r := cleanText(l.Reason, maxReason); r != "" {
		fmt.Fprintf(&b, "Reason: %s\n", r)
	}
	b.WriteString("\nPress End session to disconnect them at once.")
	return b.String()
}

// displayName is the X display of an "x11:" session, for the service's log.
func displayName(session string) string {
	d, _ := strings.CutPrefix(session, "x11:")
	if d == session {
		return ""
	}
	return d
}
