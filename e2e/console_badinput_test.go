package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wsconn"
)

// Bad input from a browser, against a real relay and a real agent: a
// websocket client in Go presents the console's cookie and Origin as the
// page's terminal does. Oversized or malformed messages close that socket
// alone, saying why, while a session opened before keeps echoing; a
// forged Origin, a stale CSRF token or an expired cookie is refused with
// 403/401 and a message, and changes nothing.
func TestConsoleBadInput(t *testing.T) {
	const idle = 2 * time.Second
	r := StartRelayArgs(t, "--console-idle-timeout", idle.String())
	adminToken := r.AdminToken()
	admin := r.Login(adminToken)
	good := newSigner(t, "secops@example.com")
	consent := filepath.Join(t.TempDir(), "consent.sh")
	if err := os.WriteFile(consent, []byte("#!/bin/sh\ncat >/dev/null\necho by=jane\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	agent := r.Enroll(admin.Token(), "--trust", good.allowedSigners(t)).StartWith("--consent-backend", "exec:"+consent)
	waitFor(t, 20*time.Second, "agent online", func() bool { return admin.Online(agent.ID) })
	waitFor(t, 10*time.Second, "agent host certificate", func() bool {
		_, err := os.Stat(filepath.Join(agent.Dir, "ssh_host_ed25519_key-cert.pub"))
		return err == nil
	})
	admin.publish(t, good, bin("plugins/testplugin"))
	c := newConsoleClient(t, r)

	// A live session, opened from the console and echoing through cat.
	s := c.login(adminToken)
	live := c.openSession(s, agent.ID, "live session", "shell,exec")
	echo := c.sshCat(s, live, agent.ID)
	echo.roundTrip("before\n")

	t.Run("bad websocket messages close that socket only", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			send   func(ws *websocket.Conn) error
			code   int
			reason string
		}{
			{"oversized", func(ws *websocket.Conn) error {
				return ws.WriteMessage(websocket.BinaryMessage, make([]byte, 1<<20+1))
			}, websocket.CloseMessageTooBig, "over 1048576 bytes"},
			{"text where binary is expected", func(ws *websocket.Conn) error {
				return ws.WriteMessage(websocket.TextMessage, []byte(`{"resize":[80,24]}`))
			}, websocket.CloseUnsupportedData, "text message refused"},
			{"broken framing", func(ws *websocket.Conn) error {
				// A frame with the reserved opcode 3, masked, empty.
				_, err := ws.NetConn().Write([]byte{0x83, 0x80, 1, 2, 3, 4})
				return err
			}, websocket.CloseProtocolError, "bad opcode 3"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ws := c.openSession(c.login(adminToken), agent.ID, "bad input: "+tc.name, "shell")
				if err := tc.send(ws); err != nil {
					t.Fatalf("send: %v", err)
				}
				code, reason := closeOf(t, ws)
				if code != tc.code || !strings.Contains(reason, tc.reason) {
					t.Errorf("closed with %d %q, want %d with %q", code, reason, tc.code, tc.reason)
				}
				echo.roundTrip(tc.name + "\n") // the other session still works
			})
		}
		t.Run("garbage instead of SSH", func(t *testing.T) {
			ws := c.openSession(c.login(adminToken), agent.ID, "bad input: garbage", "shell")
			if err := ws.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte("garbage "), 64)); err != nil {
				t.Fatal(err)
			}
			code, reason := closeOf(t, ws)
			t.Logf("garbage: closed with %d %q", code, reason)
			// The bytes are the agent's SSH server's to judge: it ends the
			// session, and the close reason carries what it said.
			if !strings.Contains(reason, "handshake") {
				t.Errorf("closed with %d %q: want the SSH handshake failure as the reason", code, reason)
			}
			echo.roundTrip("after garbage\n")
		})
		// The relay recorded why each refused session ended (it records the
		// end just after it closed the socket: wait for all three).
		wants := map[string]string{
			"bad input: oversized":                     "relay: message refused: over",
			"bad input: text where binary is expected": "relay: text message refused",
			"bad input: broken framing":                "relay: websocket protocol error",
		}
		ended := map[string]string{}
		waitFor(t, 10*time.Second, "the refused sessions recorded as ended", func() bool {
			var list []apiv1.Session
			c.getJSON(adminToken, "/v1/sessions?limit=20", &list)
			for _, s := range list {
				ended[s.Reason] = s.EndBy + ": " + s.EndReason
			}
			for reason := range wants {
				if ended[reason] == ": " || ended[reason] == "" {
					return false
				}
			}
			return true
		})
		for reason, want := range wants {
			if !strings.HasPrefix(ended[reason], want) {
				t.Errorf("session %q ended %q, want %q...", reason, ended[reason], want)
			}
		}
	})

	jobBody := `{"plugin":"testplugin","target":"id=` + agent.ID + `","dry_run":true,"reason":"bad input test"}`
	jobs := func() int {
		var list []apiv1.Job
		c.getJSON(adminToken, "/v1/jobs", &list)
		return len(list)
	}
	t.Run("forged Origin gets 403 and changes nothing", func(t *testing.T) {
		s := c.login(adminToken)
		status, body := c.call("POST", "/v1/jobs", s.cookie, "https://evil.example", s.csrf, jobBody)
		if status != http.StatusForbidden || !strings.Contains(body, "Origin") {
			t.Errorf("job create from a forged Origin = %d %s, want 403 naming the Origin", status, body)
		}
		_, resp, err := c.dialSession(s, agent.ID, "forged", "shell", "https://evil.example")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("session websocket from a forged Origin: %v %v, want 403", err, resp)
		} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "Origin") {
			t.Errorf("session websocket from a forged Origin: 403 %s, want a message naming the Origin", b)
		}
		if n := jobs(); n != 0 {
			t.Errorf("%d jobs after a refused create, want 0", n)
		}
	})

	t.Run("stale CSRF token gets 403 and changes nothing", func(t *testing.T) {
		old := c.login(adminToken)
		if status, body := c.call("POST", "/console/logout", old.cookie, c.r.URL, old.csrf, ""); status != http.StatusNoContent {
			t.Fatalf("log out: %d %s", status, body)
		}
		s := c.login(adminToken)
		for _, csrf := range []string{old.csrf, c.login(adminToken).csrf} { // a logged-out session's, another live session's
			status, body := c.call("POST", "/v1/jobs", s.cookie, c.r.URL, csrf, jobBody)
			if status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Errorf("job create with another session's CSRF token = %d %s, want 403 naming the CSRF token", status, body)
			}
		}
		if n := jobs(); n != 0 {
			t.Errorf("%d jobs after a refused create, want 0", n)
		}
	})

	t.Run("expired cookie gets 401 and changes nothing", func(t *testing.T) {
		s := c.login(adminToken)
		if s.idle != int(idle/time.Second) {
			t.Fatalf("the relay reports an idle timeout of %d s, want %v (--console-idle-timeout)", s.idle, idle)
		}
		// Idle expiry is the passing of time itself: nothing happens on the
		// relay when a session goes idle (it is checked at the next
		// request), so the test lets the idle timeout pass, unused.
		<-time.After(idle + 200*time.Millisecond)
		status, body := c.call("POST", "/v1/jobs", s.cookie, c.r.URL, s.csrf, jobBody)
		if status != http.StatusUnauthorized || !strings.Contains(body, "without use") {
			t.Errorf("job create with an expired cookie = %d %s, want 401 saying it expired", status, body)
		}
		if status, body := c.call("GET", "/v1/jobs", s.cookie, c.r.URL, "", ""); status != http.StatusUnauthorized {
			t.Errorf("GET with the expired cookie after it was refused = %d %s, want 401", status, body)
		}
		if n := jobs(); n != 0 {
			t.Errorf("%d jobs after a refused create, want 0", n)
		}
		// The same request from a live session is accepted: the refusals
		// were for the credentials, not the request.
		s = c.login(adminToken)
		if status, body := c.call("POST", "/v1/jobs", s.cookie, c.r.URL, s.csrf, jobBody); status != http.StatusCreated {
			t.Fatalf("job create from a live session = %d %s, want 201", status, body)
		}
		if n := jobs(); n != 1 {
			t.Errorf("%d jobs after one create, want 1", n)
		}
	})

	echo.roundTrip("still here\n")
	echo.close()
}

// consoleClient speaks to the relay as the console's page does: cookie,
// Origin and CSRF header.
type consoleClient struct {
	t  *testing.T
	r  *Relay
	hc *http.Client
}

func newConsoleClient(t *testing.T, r *Relay) *consoleClient {
	return &consoleClient{t: t, r: r, hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
}

type consoleSession struct {
	cookie, csrf string
	idle         int
}

func (c *consoleClient) call(method, path, cookie, origin, csrf, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.r.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-patchbay_session", Value: cookie})
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getJSON reads path with a bearer token.
func (c *consoleClient) getJSON(token, path string, out any) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.r.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// login logs in to the console with an API token, as the login form does.
func (c *consoleClient) login(token string) consoleSession {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.r.URL+"/console/login", strings.NewReader(`{"method":"token","secret":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.r.URL)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("console login: %v", err)
	}
	defer resp.Body.Close()
	var info struct {
		CSRF        string `json:"csrf"`
		IdleSeconds int    `json:"idle_seconds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("console login: %d %v", resp.StatusCode, err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-patchbay_session" {
			return consoleSession{cookie: ck.Value, csrf: info.CSRF, idle: info.IdleSeconds}
		}
	}
	c.t.Fatal("console login set no session cookie")
	return consoleSession{}
}

// dialSession opens a session websocket as the console's terminal does.
func (c *consoleClient) dialSession(s consoleSession, agentID, reason, caps, origin string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Subprotocols: []string{apiv1.SessionSubprotocol},
		HandshakeTimeout: 10 * time.Second}
	h := http.Header{}
	h.Set("Origin", origin)
	h.Set("Cookie", "__Host-patchbay_session="+s.cookie)
	u := "wss://" + c.r.Addr + "/v1/agents/" + agentID + "/session?capabilities=" + caps + "&reason=" + url.QueryEscape(reason)
	return d.Dial(u, h)
}

// openSession opens a session and waits until the endpoint approved it.
func (c *consoleClient) openSession(s consoleSession, agentID, reason, caps string) *websocket.Conn {
	c.t.Helper()
	ws, resp, err := c.dialSession(s, agentID, reason, caps, c.r.URL)
	if err != nil {
		var b []byte
		if resp != nil {
			b, _ = io.ReadAll(resp.Body)
		}
		c.t.Fatalf("open session %q: %v %s", reason, err, b)
	}
	c.t.Cleanup(func() { ws.Close() })
	for {
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("session %q: waiting for approval: %v", reason, err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		var st apiv1.SessionStatus
		if err := json.Unmarshal(msg, &st); err != nil {
			c.t.Fatalf("session %q: status %s: %v", reason, msg, err)
		}
		switch st.State {
		case "approved":
			ws.SetReadDeadline(time.Time{})
			return ws
		case "denied", "failed":
			c.t.Fatalf("session %q: %s: %s", reason, st.State, st.Message)
		}
	}
}

// closeOf reads until the relay closes ws and returns its close frame.
func closeOf(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue // output or status sent before the close
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("the relay did not close the websocket with a close frame: %v", err)
	}
}

// catSession is an SSH session running cat over a console websocket.
type catSession struct {
	t      *testing.T
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    io.Reader
}

// sshCat runs SSH over ws (see sshClient) and starts cat.
func (c *consoleClient) sshCat(s consoleSession, ws *websocket.Conn, agentID string) *catSession {
	t := c.t
	t.Helper()
	client := c.sshClient(s, ws, agentID)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.Start("cat"); err != nil {
		t.Fatalf("start cat: %v", err)
	}
	return &catSession{t: t, client: client, sess: sess, in: in, out: out}
}

// sshClient certifies a new key as the console does (POST
// /v1/ssh/certificate with the cookie and CSRF token) and runs SSH over ws,
// checking the agent's host certificate against the relay's host CA.
func (c *consoleClient) sshClient(s consoleSession, ws *websocket.Conn, agentID string) *ssh.Client {
	t := c.t
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	body, _ := json.Marshal(apiv1.SSHCertRequest{PublicKey: string(ssh.MarshalAuthorizedKey(sshPub))})
	status, resp := c.call("POST", "/v1/ssh/certificate", s.cookie, c.r.URL, s.csrf, string(body))
	if status != http.StatusOK {
		t.Fatalf("certify the key: %d %s", status, resp)
	}
	var cert apiv1.SSHCert
	if err := json.Unmarshal([]byte(resp), &cert); err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cert.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(pk.(*ssh.Certificate), signer)
	if err != nil {
		t.Fatal(err)
	}
	var hostCA ssh.PublicKey
	for rest := []byte(cert.KnownHosts); len(rest) > 0; {
		marker, _, k, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			break
		}
		if marker == "cert-authority" {
			hostCA = k
		}
		rest = r
	}
	if hostCA == nil {
		t.Fatalf("no @cert-authority line in %q", cert.KnownHosts)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
		return bytes.Equal(auth.Marshal(), hostCA.Marshal())
	}}
	sc, chans, reqs, err := ssh.NewClientConn(wsconn.New(ws, nil), agentID+":22", &ssh.ClientConfig{
		User: cert.KeyID, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)}, HostKeyCallback: checker.CheckHostKey, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("SSH over the console websocket: %v", err)
	}
	return ssh.NewClient(sc, chans, reqs)
}

// roundTrip writes line to cat and reads it back.
func (s *catSession) roundTrip(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line); err != nil {
		s.t.Fatalf("write %q to the live session: %v", line, err)
	}
	got := make([]byte, len(line))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(s.out, got); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(got) != line {
			s.t.Fatalf("the live session echoed %q, %v; want %q", got, err, line)
		}
	case <-time.After(30 * time.Second):
		s.client.Close() // ends the reader
		<-done
		s.t.Fatalf("the live session did not echo %q within 30 s", line)
	}
}

func (s *catSession) close() {
	s.in.Close()
	s.sess.Wait()
	s.client.Close()
}
