package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wsconn"
)

// sessionWriteBuffers are the session websockets' write buffers, shared
// while idle (a load generator holds a thousand sessions).
var sessionWriteBuffers = &sync.Pool{}

// SessionRequest asks for an interactive session on one agent.
type SessionRequest struct {
	Agent        string   // agent ID or unique hostname
	Reason       string   // shown to the user at the machine and kept in the audit log
	Capabilities []string // default: shell
	// OnStatus, if set, is told about each status the relay reports while
	// the endpoint decides ("waiting"), and the final one.
	OnStatus func(apiv1.SessionStatus)
}

// RefusedError is a session the endpoint refused, or that could not start.
type RefusedError struct {
	Status apiv1.SessionStatus
}

func (e *RefusedError) Error() string {
	msg := e.Status.Message
	if msg == "" {
		msg = "no reason given"
	}
	if e.Status.State == "denied" {
		by := ""
		if c := e.Status.Consent; c != nil && c.By != "" {
			by = " by " + c.By
			if c.Backend != "" {
				by += " (" + c.Mode + " via " + c.Backend + ")"
			}
		}
		return fmt.Sprintf("session refused%s: %s", by, msg)
	}
	return "session failed: " + msg
}

// OpenSession asks the relay for a session and waits while the endpoint
// decides (its consent policy may ask the user, which can take a minute).
// On approval it returns the byte stream to the agent's SSH server; the
// caller runs an SSH client on it (or copies it to OpenSSH) and closes it.
func (c *Client) OpenSession(ctx context.Context, req SessionRequest) (*wsconn.Conn, apiv1.SessionStatus, error) {
	agent, err := pathSeg("agent", req.Agent)
	if err != nil {
		return nil, apiv1.SessionStatus{}, err
	}
	u := *c.base
	u.Scheme = "wss"
	if c.base.Scheme == "http" {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/agents/" + agent + "/session"
	u.RawPath = ""
	q := url.Values{}
	if req.Reason != "" {
		q.Set("reason", req.Reason)
	}
	if len(req.Capabilities) > 0 {
		q.Set("capabilities", strings.Join(req.Capabilities, ","))
	}
	u.RawQuery = q.Encode()
	tlsCfg := c.tls.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"} // a websocket upgrade is HTTP/1.1
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		TLSClientConfig:  tlsCfg,
		HandshakeTimeout: Timeout,
		Subprotocols:     []string{apiv1.SessionSubprotocol},
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  64 << 10,
		WriteBufferPool:  sessionWriteBuffers, // a session between keystrokes holds no write buffer
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cfg.Token)
	h.Set("User-Agent", UserAgent)
	ws, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, apiv1.SessionStatus{}, fmt.Errorf("open session on %s: %w", req.Agent, apiError(resp))
		}
		return nil, apiv1.SessionStatus{}, c.connError(err)
	}
	if ws.Subprotocol() != apiv1.SessionSubprotocol {
		ws.Close()
		return nil, apiv1.SessionStatus{}, fmt.Errorf("open session: the relay did not accept subprotocol %s", apiv1.SessionSubprotocol)
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			if ctx.Err() != nil {
				return nil, apiv1.SessionStatus{}, ctx.Err()
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Text != "" {
				return nil, apiv1.SessionStatus{}, fmt.Errorf("open session: relay closed the connection: %s", ce.Text)
			}
			return nil, apiv1.SessionStatus{}, fmt.Errorf("open session: %w", err)
		}
		if typ != websocket.TextMessage {
			ws.Close()
			return nil, apiv1.SessionStatus{}, errors.New("open session: the relay sent data before the session was approved")
		}
		var st apiv1.SessionStatus
		if err := json.Unmarshal(msg, &st); err != nil {
			ws.Close()
			return nil, st, fmt.Errorf("open session: bad status from the relay: %w", err)
		}
		if req.OnStatus != nil {
			req.OnStatus(st)
		}
		switch st.State {
		case "waiting":
			continue
		case "approved":
			if !stop() {
				ws.Close()
				return nil, st, ctx.Err()
			}
			return wsconn.New(ws, nil), st, nil
		default:
			ws.Close()
			return nil, st, &RefusedError{Status: st}
		}
	}
}

// SSHCertificate asks the relay to certify an SSH public key (authorized_keys
// format) for the logged-in technician.
func (c *Client) SSHCertificate(ctx context.Context, publicKey string) (apiv1.SSHCert, error) {
	var out apiv1.SSHCert
	if err := c.do(ctx, http.MethodPost, "/v1/ssh/certificate", nil, apiv1.SSHCertRequest{PublicKey: publicKey}, &out); err != nil {
		return out, fmt.Errorf("get SSH certificate: %w", err)
	}
	return out, nil
}

// Sessions lists sessions, newest first (at most limit; 0 for the relay's
// default), optionally those of one agent ID.
func (c *Client) Sessions(ctx context.Context, agentID string, limit int) ([]apiv1.Session, error) {
	q := url.Values{}
	if agentID != "" {
		q.Set("agent", agentID)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	out := []apiv1.Session{}
	if err := c.do(ctx, http.MethodGet, "/v1/sessions", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	if out == nil {
		out = []apiv1.Session{}
	}
	return out, nil
}

// Session returns one session.
func (c *Client) Session(ctx context.Context, id string) (apiv1.Session, error) {
	var out apiv1.Session
	seg, err := pathSeg("session ID", id)
	if err != nil {
		return out, err
	}
	if err := c.do(ctx, http.MethodGet, "/v1/sessions/"+seg, nil, nil, &out); err != nil {
		return out, fmt.Errorf("show session: %w", err)
	}
	return out, nil
}

// EndSession asks the relay to end a live session.
func (c *Client) EndSession(ctx context.Context, id, reason string) (apiv1.Session, error) {
	var out apiv1.Session
	seg, err := pathSeg("session ID", id)
	if err != nil {
		return out, err
	}
	if err := c.do(ctx, http.MethodPost, "/v1/sessions/"+seg+"/end", nil, apiv1.SessionEnd{Reason: reason}, &out); err != nil {
		return out, fmt.Errorf("end session: %w", err)
	}
	return out, nil
}

// Recording copies a session's asciicast v2 recording to w.
func (c *Client) Recording(ctx context.Context, id string, w io.Writer) (int64, error) {
	seg, err := pathSeg("session ID", id)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/sessions/"+seg+"/recording", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("User-Agent", UserAgent)
	hc := *c.hc
	hc.Timeout = 0 // a long recording may take longer than one API call
	resp, err := hc.Do(req)
	if err != nil {
		return 0, c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("get recording: %w", apiError(resp))
	}
	return io.Copy(w, resp.Body)
}
