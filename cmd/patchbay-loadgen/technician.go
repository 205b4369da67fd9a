package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/internal/wsconn"
)

// technician is the technician side of the session bench: the real client
// library (client.OpenSession, client.EnsureSSHIdentity) and an
// x/crypto/ssh client, as `patchbay ssh` uses them. It is safe for
// concurrent use.
type technician struct {
	// cl opens sessions only. It never makes a REST call: net/http's
	// HTTP/2 set-up adds "h2" to the client's shared tls.Config on the
	// first one, after which the session websocket negotiates h2 and
	// fails (see the report's problems).
	cl         *client.Client
	api        *client.Client // REST calls
	id         *client.SSHIdentity
	ssh        *ssh.ClientConfig
	configPath string // the CLI config, for patchbay ssh-config and proxy (OpenSSH)
}

// newTechnician logs in with an API token of role technician, saves the CLI
// config in dir (with the SSH key and certificate beside it, as patchbay
// login does) and fetches the SSH certificate.
func newTechnician(ctx context.Context, server, token, fp, dir string) (*technician, error) {
	cfg, err := client.Login(ctx, server, token, fp)
	if err != nil {
		return nil, err
	}
	t := &technician{configPath: filepath.Join(dir, "config.json")}
	if err := client.SaveConfigTo(t.configPath, cfg); err != nil {
		return nil, err
	}
	if t.api, err = client.New(cfg); err != nil {
		return nil, err
	}
	if t.id, err = t.api.EnsureSSHIdentity(ctx, dir, 5*time.Minute); err != nil {
		t.api.Close()
		return nil, err
	}
	if t.cl, err = client.New(cfg); err != nil {
		t.api.Close()
		return nil, err
	}
	t.ssh = &ssh.ClientConfig{
		User:            t.id.Cert.KeyId,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(t.id.Signer)},
		HostKeyCallback: t.id.HostKeyCallback(),
	}
	return t, nil
}

// Close releases the API clients' idle connections.
func (t *technician) Close() {
	t.cl.Close()
	t.api.Close()
}

// liveSessions counts the sessions among the newest 1,000 that the relay
// still records as requested or live.
func (t *technician) liveSessions(ctx context.Context) (int, error) {
	list, err := t.api.Sessions(ctx, "", 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list {
		if s.State == "requested" || s.State == "approved" {
			n++
		}
	}
	return n, nil
}

// sshConn is an authenticated SSH connection through the relay.
type sshConn struct {
	ws *wsconn.Conn
	cl *ssh.Client
	// Since the request: the endpoint approved (the relay said so), the
	// SSH handshake and authentication were done.
	start               time.Time
	approved, handshake time.Duration
}

// Close ends the SSH connection and the session websocket.
func (c *sshConn) Close() {
	_ = c.cl.Close()
	_ = c.ws.Close()
}

// openSession asks the relay for a session on agent and waits for the
// endpoint's decision. It returns the session's byte stream.
func (t *technician) openSession(ctx context.Context, agent, reason string, caps []string) (*wsconn.Conn, error) {
	ws, _, err := t.cl.OpenSession(ctx, client.SessionRequest{Agent: agent, Reason: reason, Capabilities: caps})
	return ws, err
}

// openSSH asks for a session and runs the SSH handshake on it, as
// `patchbay ssh` does.
func (t *technician) openSSH(ctx context.Context, agent, reason string, caps []string) (*sshConn, error) {
	start := time.Now()
	ws, err := t.openSession(ctx, agent, reason, caps)
	if err != nil {
		return nil, err
	}
	approved := time.Since(start)
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(ws, agent+":22", t.ssh)
	if !stop() || err != nil {
		ws.Close()
		if err == nil {
			err = ctx.Err()
		}
		if r := ws.CloseReason(); r != "" {
			return nil, fmt.Errorf("ssh handshake: %w (relay: %s)", err, r)
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	return &sshConn{ws: ws, cl: ssh.NewClient(sc, chans, reqs), start: start, approved: approved, handshake: time.Since(start)}, nil
}

// setupTiming is one session's setup, each time since the request.
type setupTiming struct {
	approved, handshake, first time.Duration
}

// shellSetup opens a shell session on agent the way a technician does
// (shell capability, a terminal, the account's login shell), waits for the
// first byte the shell prints, and closes the session.
func (t *technician) shellSetup(ctx context.Context, agent string) (setupTiming, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := t.openSSH(ctx, agent, "make bench: session setup", []string{wire.CapShell})
	if err != nil {
		return setupTiming{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	sess, err := c.cl.NewSession()
	if err != nil {
		return setupTiming{}, fmt.Errorf("open session channel: %w", err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return setupTiming{}, err
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return setupTiming{}, fmt.Errorf("request a terminal: %w", err)
	}
	if err := sess.Shell(); err != nil {
		return setupTiming{}, fmt.Errorf("start the shell: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(out, b[:]); err != nil {
		return setupTiming{}, fmt.Errorf("first shell byte: %w", err)
	}
	return setupTiming{approved: c.approved, handshake: c.handshake, first: time.Since(c.start)}, nil
}

// typist is one terminal session running `cat` in raw mode, for keystroke
// round trips.
type typist struct {
	c   *sshConn
	in  io.WriteCloser
	out io.Reader
}

// typistCommand puts the terminal in raw mode without echo, says it is
// ready, and echoes every byte back.
const typistCommand = "stty raw -echo && printf R && exec cat"

// openTypist starts typistCommand on a terminal on agent and waits until it
// is ready.
func (t *technician) openTypist(ctx context.Context, agent string) (*typist, error) {
	return t.dialTypist(ctx, agent, "make bench: keystrokes", wire.CapExec, (*sshConn).startTypist)
}

// dialTypist opens an SSH connection to agent for purpose with capability
// and starts a typist on it with start, all within a minute.
func (t *technician) dialTypist(ctx context.Context, agent, purpose, capability string, start func(*sshConn) (*typist, error)) (*typist, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := t.openSSH(ctx, agent, purpose, []string{capability})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, c.Close)
	ty, err := start(c)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return ty, nil
}

// terminalSession opens a session channel on c with an 80x24 terminal,
// echoing (echo 1) or not (0), and a typist on its stdin and stdout.
func (c *sshConn) terminalSession(echo uint32) (*typist, *ssh.Session, error) {
	sess, err := c.cl.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("open session channel: %w", err)
	}
	ty := &typist{c: c}
	if ty.in, err = sess.StdinPipe(); err != nil {
		return nil, nil, err
	}
	if ty.out, err = sess.StdoutPipe(); err != nil {
		return nil, nil, err
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: echo}); err != nil {
		return nil, nil, fmt.Errorf("request a terminal: %w", err)
	}
	return ty, sess, nil
}

func (c *sshConn) startTypist() (*typist, error) {
	ty, sess, err := c.terminalSession(0)
	if err != nil {
		return nil, err
	}
	if err := sess.Start(typistCommand); err != nil {
		return nil, fmt.Errorf("start %q: %w", typistCommand, err)
	}
	buf := make([]byte, 256)
	for {
		n, err := ty.out.Read(buf)
		if bytes.IndexByte(buf[:n], 'R') >= 0 {
			return ty, nil
		}
		if err != nil {
			return nil, fmt.Errorf("wait for %q to start: %w", typistCommand, err)
		}
	}
}

// key sends one byte and waits for its echo, returning the round trip.
func (ty *typist) key(b byte) (time.Duration, error) {
	var out [1]byte
	start := time.Now()
	if _, err := ty.in.Write([]byte{b}); err != nil {
		return 0, fmt.Errorf("send key: %w", err)
	}
	if _, err := io.ReadFull(ty.out, out[:]); err != nil {
		return 0, fmt.Errorf("read echo: %w", err)
	}
	rtt := time.Since(start)
	if out[0] != b {
		return rtt, fmt.Errorf("echo %q for key %q", out[0], b)
	}
	return rtt, nil
}

// Close ends the typist's session.
func (ty *typist) Close() { ty.c.Close() }

// transfer is one measured bulk transfer.
type transfer struct {
	bytes   int64
	elapsed time.Duration
	use     cpuUse // CPU used during it (differences)
	note    string // what ran
}

// gbps is the transfer's throughput in Gbit/s.
func (x transfer) gbps() float64 {
	if x.elapsed <= 0 {
		return 0
	}
	return float64(x.bytes) * 8 / x.elapsed.Seconds() / 1e9
}

// copyBuf is the buffer size of the bench's own copy loops.
const copyBuf = 64 << 10

// drain reads r until EOF (or n bytes when n > 0) and returns the count.
func drain(r io.Reader, n int64) (int64, error) {
	buf := make([]byte, copyBuf)
	var got int64
	for n <= 0 || got < n {
		want := len(buf)
		if n > 0 {
			want = int(min(int64(want), n-got))
		}
		k, err := r.Read(buf[:want])
		got += int64(k)
		if errors.Is(err, io.EOF) {
			if n > 0 && got < n {
				return got, fmt.Errorf("EOF after %d of %d bytes", got, n)
			}
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// fill writes n zero bytes to w in 32 KiB writes.
func fill(w io.Writer, n int64) error {
	buf := make([]byte, 32<<10)
	for n > 0 {
		k := int(min(int64(len(buf)), n))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

// sshDownload runs `head -c n /dev/zero` on agent (exec, no terminal) and
// reads its output over the SSH channel.
func (t *technician) sshDownload(ctx context.Context, agent string, n int64) (transfer, error) {
	cmd := fmt.Sprintf("head -c %d /dev/zero", n)
	x := transfer{note: cmd}
	err := t.withExec(ctx, agent, cmd, func(sess *ssh.Session) error {
		out, err := sess.StdoutPipe()
		if err != nil {
			return err
		}
		if err := sess.Start(cmd); err != nil {
			return err
		}
		start := time.Now()
		got, err := drain(out, 0)
		if err == nil {
			err = sess.Wait()
		}
		x.bytes, x.elapsed = got, time.Since(start)
		if err == nil && got != n {
			err = fmt.Errorf("got %d of %d bytes", got, n)
		}
		return err
	})
	return x, err
}

// sshUpload writes n bytes to `cat > /dev/null` on agent over the SSH
// channel and waits for the command's exit.
func (t *technician) sshUpload(ctx context.Context, agent string, n int64) (transfer, error) {
	cmd := "cat > /dev/null"
	x := transfer{note: cmd}
	err := t.withExec(ctx, agent, cmd, func(sess *ssh.Session) error {
		in, err := sess.StdinPipe()
		if err != nil {
			return err
		}
		if err := sess.Start(cmd); err != nil {
			return err
		}
		start := time.Now()
		err = fill(in, n)
		in.Close()
		if err == nil {
			err = sess.Wait()
		}
		x.bytes, x.elapsed = n, time.Since(start)
		return err
	})
	return x, err
}

// withExec opens an exec session on agent and runs f on one session channel.
func (t *technician) withExec(ctx context.Context, agent, cmd string, f func(*ssh.Session) error) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := t.openSSH(ctx, agent, "make bench: "+cmd, []string{wire.CapExec})
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	sess, err := c.cl.NewSession()
	if err != nil {
		return fmt.Errorf("open session channel: %w", err)
	}
	defer sess.Close()
	if err := f(sess); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cmd, ctx.Err())
		}
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}

// relayDownload asks the echo agent to send n bytes on the session stream
// and reads them: the relayed byte stream without SSH.
func (t *technician) relayDownload(ctx context.Context, agent string, n int64) (transfer, error) {
	return t.withStream(ctx, agent, fmt.Sprintf("%s %d", echoSource, n), func(ws *wsconn.Conn, x *transfer) error {
		start := time.Now()
		got, err := drain(ws, n)
		x.bytes, x.elapsed = got, time.Since(start)
		return err
	})
}

// relayUpload sends n bytes to the echo agent, which answers one byte when
// it has them all.
func (t *technician) relayUpload(ctx context.Context, agent string, n int64) (transfer, error) {
	return t.withStream(ctx, agent, fmt.Sprintf("%s %d", echoSink, n), func(ws *wsconn.Conn, x *transfer) error {
		start := time.Now()
		if err := fill(ws, n); err != nil {
			return err
		}
		var ack [1]byte
		if _, err := io.ReadFull(ws, ack[:]); err != nil {
			return fmt.Errorf("wait for the agent's acknowledgement: %w", err)
		}
		x.bytes, x.elapsed = n, time.Since(start)
		return nil
	})
}

// withStream opens a session on the echo agent with reason and runs f on
// its byte stream.
func (t *technician) withStream(ctx context.Context, agent, reason string, f func(*wsconn.Conn, *transfer) error) (transfer, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	x := transfer{note: reason}
	ws, err := t.openSession(ctx, agent, reason, []string{wire.CapExec})
	if err != nil {
		return x, err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	if err := f(ws, &x); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return x, fmt.Errorf("%s: %w", reason, err)
	}
	return x, nil
}
