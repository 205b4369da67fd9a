package session

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/consent"
)

// SocketFile is the local control socket in the agent's data directory. Only
// the agent's own account can use it (the directory is 0700, the socket
// 0600): it lists live sessions and ends them, for
// "patchbay-agent sessions list|end" run by an administrator at the machine.
// The person at the machine who is not an administrator ends a session from
// the consent web page or dialog.
const SocketFile = "agent.sock"

// localRequest is one command on the control socket.
type localRequest struct {
	Cmd string `json:"cmd"`          // "list", "end", "approve" or "deny"
	ID  string `json:"id,omitempty"` // with "end": a session ID or "all"; with approve/deny: a pending request
	By  string `json:"by,omitempty"` // approve/deny: the local account that answers (for the record)
}

type localResponse struct {
	Sessions []consent.Live `json:"sessions,omitempty"`
	Pending  []Pending      `json:"pending,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// Pending is a request waiting for the person at the machine, as
// "patchbay-agent sessions list" shows it.
type Pending struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	Technician   string    `json:"technician"`
	Reason       string    `json:"reason"`
	Capabilities []string  `json:"capabilities,omitempty"`
	Fix          string    `json:"fix,omitempty"`
	Deadline     time.Time `json:"deadline"`
}

// Answerer answers pending consent requests for a local administrator;
// *consent.Consent implements it.
type Answerer interface {
	Pending() []consent.Request
	AnswerLocal(id string, approve bool, by string) error
}

// Control serves the local control socket. Serve owns its goroutines; Close
// stops it and waits.
type Control struct {
	ln   net.Listener
	sess consent.Sessions
	ans  Answerer // nil: approve and deny are refused
	log  zerolog.Logger
	wg   sync.WaitGroup
}

// ListenControl listens on path (a unix socket, replaced if stale). ans may
// be nil.
func ListenControl(path string, sess consent.Sessions, ans Answerer, log zerolog.Logger) (*Control, error) {
	if len(path) > 100 {
		return nil, fmt.Errorf("control socket path %s is too long for a unix socket (limit ~100 bytes): use a shorter --data", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	c := &Control{ln: ln, sess: sess, ans: ans, log: log}
	c.wg.Add(1)
	go c.serve()
	return c, nil
}

func (c *Control) serve() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			var req localRequest
			var resp localResponse
			if err := json.NewDecoder(bufio.NewReader(&limited{conn, 4096})).Decode(&req); err != nil {
				resp.Error = "bad request: " + err.Error()
			} else {
				switch req.Cmd {
				case "list":
					resp.Sessions = c.sess.Live()
					if c.ans != nil {
						for _, r := range c.ans.Pending() {
							resp.Pending = append(resp.Pending, Pending{ID: r.SessionID, Kind: r.Kind, Technician: r.Technician, Reason: r.Reason,
								Capabilities: r.Capabilities, Fix: r.Fix, Deadline: r.Deadline})
						}
					}
				case "approve", "deny":
					by := req.By
					if by == "" || len(by) > 64 {
						by = "local administrator"
					}
					switch {
					case c.ans == nil:
						resp.Error = "this agent's consent backend takes no answers from the control socket"
					default:
						if err := c.ans.AnswerLocal(req.ID, req.Cmd == "approve", by); err != nil {
							resp.Error = err.Error()
						} else {
							c.log.Info().Str("id", req.ID).Str("by", by).Str("answer", req.Cmd).Msg("consent request answered from the control socket")
						}
					}
				case "end":
					if err := c.sess.End(req.ID, "local administrator"); err != nil {
						resp.Error = err.Error()
					} else {
						c.log.Info().Str("session_id", req.ID).Msg("session ended from the control socket")
					}
				default:
					resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
				}
			}
			if resp.Sessions == nil && req.Cmd == "list" {
				resp.Sessions = []consent.Live{}
			}
			_ = json.NewEncoder(conn).Encode(resp)
		}()
	}
}

// Close stops listening and waits for requests in progress.
func (c *Control) Close() error {
	err := c.ln.Close()
	c.wg.Wait()
	return err
}

type limited struct {
	c net.Conn
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}

// LocalList asks a running agent for its live sessions and the requests
// waiting for an answer.
func LocalList(ctx context.Context, path string) ([]consent.Live, []Pending, error) {
	resp, err := localCall(ctx, path, localRequest{Cmd: "list"})
	return resp.Sessions, resp.Pending, err
}

// LocalAnswer approves or denies a pending request as the local account by.
func LocalAnswer(ctx context.Context, path, id string, approve bool, by string) error {
	cmd := "deny"
	if approve {
		cmd = "approve"
	}
	_, err := localCall(ctx, path, localRequest{Cmd: cmd, ID: id, By: by})
	return err
}

// LocalEnd asks a running agent to end a session ("all": every session).
func LocalEnd(ctx context.Context, path, id string) error {
	_, err := localCall(ctx, path, localRequest{Cmd: "end", ID: id})
	return err
}

func localCall(ctx context.Context, path string, req localRequest) (localResponse, error) {
	var resp localResponse
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return resp, fmt.Errorf("connect to the running agent at %s: %w (is patchbay-agent run up, with the same --data, and are you its user?)", path, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return resp, err
	}
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return resp, fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
