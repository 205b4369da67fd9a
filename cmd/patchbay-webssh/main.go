//go:build js && wasm

// Command patchbay-webssh is the web console's SSH client, compiled to
// WebAssembly (GOOS=js GOARCH=wasm) by make web and served by the relay as
// /assets/webssh.wasm. It makes the browser's ed25519 key pair (the private
// key never leaves this program's memory), and runs an SSH session over the
// bytes of the session websocket, which the page's terminal.js carries: the
// relay only bridges them, exactly as for patchbay ssh.
//
// It sets one global, patchbayWebSSH, with:
//
//	publicKey() string
//	    the key's public half (authorized_keys format), to certify with
//	    POST /v1/ssh/certificate
//	connect({certificate, knownHosts, agentID, cols, rows, send, output, closed}) handle
//	    starts SSH over a websocket the page opened and the relay approved:
//	    send(Uint8Array) writes to the websocket, output(Uint8Array) gets
//	    the terminal's bytes, closed(message) is called once at the end.
//	    The handle has receive(Uint8Array) (bytes from the websocket),
//	    input(string) (keystrokes), resize(cols, rows) and close(message).
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall/js"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	api := js.Global().Get("Object").New()
	api.Set("publicKey", js.FuncOf(func(js.Value, []js.Value) any { return pub }))
	api.Set("connect", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 {
			panic("connect wants one options object")
		}
		return connect(signer, args[0])
	}))
	js.Global().Set("patchbayWebSSH", api)
	select {} // serve the page for as long as it lives
}

// session is one terminal session: SSH over the bytes the page hands in.
type session struct {
	conn   *wsConn
	stdin  *queue
	opts   js.Value
	closed chan struct{}
}

func connect(signer ssh.Signer, opts js.Value) js.Value {
	s := &session{conn: newWSConn(opts.Get("send")), stdin: newQueue(), opts: opts, closed: make(chan struct{})}
	handle := js.Global().Get("Object").New()
	handle.Set("receive", js.FuncOf(func(_ js.Value, args []js.Value) any {
		b := make([]byte, args[0].Get("length").Int())
		js.CopyBytesToGo(b, args[0])
		s.conn.in.push(b)
		return nil
	}))
	handle.Set("input", js.FuncOf(func(_ js.Value, args []js.Value) any {
		s.stdin.push([]byte(args[0].String()))
		return nil
	}))
	resize := make(chan [2]int, 8)
	handle.Set("resize", js.FuncOf(func(_ js.Value, args []js.Value) any {
		select {
		case resize <- [2]int{args[0].Int(), args[1].Int()}:
		default: // the next resize carries the final size
		}
		return nil
	}))
	handle.Set("close", js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "the connection closed"
		if len(args) > 0 && args[0].Type() == js.TypeString {
			msg = args[0].String()
		}
		s.conn.closeWith(msg)
		return nil
	}))
	go s.run(signer, resize)
	return handle
}

func (s *session) run(signer ssh.Signer, resize chan [2]int) {
	msg := s.shell(signer, resize)
	s.conn.closeWith(msg)
	s.stdin.close()
	s.opts.Call("closed", msg)
}

// shell runs the SSH session and returns how it ended.
func (s *session) shell(signer ssh.Signer, resize chan [2]int) string {
	certLine := s.opts.Get("certificate").String()
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certLine))
	if err != nil {
		return "the relay's certificate: " + err.Error()
	}
	cert, ok := pk.(*ssh.Certificate)
	if !ok || !bytes.Equal(cert.Key.Marshal(), signer.PublicKey().Marshal()) {
		return "the relay certified another key than this page's"
	}
	certSigner, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return err.Error()
	}
	hostCA, err := certAuthority(s.opts.Get("knownHosts").String())
	if err != nil {
		return err.Error()
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool { return bytes.Equal(auth.Marshal(), hostCA.Marshal()) },
		HostKeyFallback: func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			return fmt.Errorf("agent %s presented a plain host key (%s), not a certificate from the relay's host CA: refused",
				strings.TrimSuffix(hostname, ":22"), ssh.FingerprintSHA256(key))
		},
	}
	agentID := s.opts.Get("agentID").String()
	sc, chans, reqs, err := ssh.NewClientConn(s.conn, agentID+":22", &ssh.ClientConfig{
		User: cert.KeyId, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: checker.CheckHostKey, Timeout: 30 * time.Second,
	})
	if err != nil {
		if r := s.conn.reason(); r != "" {
			return r
		}
		return "SSH: " + err.Error()
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "SSH session: " + err.Error()
	}
	defer sess.Close()
	out := &jsWriter{fn: s.opts.Get("output")}
	sess.Stdout, sess.Stderr = out, out
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err.Error()
	}
	cols, rows := s.opts.Get("cols").Int(), s.opts.Get("rows").Int()
	if err := sess.RequestPty("xterm-256color", rows, cols, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return "request a terminal: " + err.Error()
	}
	if err := sess.Shell(); err != nil {
		return "start a shell: " + err.Error()
	}
	go func() {
		for {
			b, ok := s.stdin.pop()
			if !ok {
				return
			}
			if _, err := stdin.Write(b); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sz := <-resize:
				_ = sess.WindowChange(sz[1], sz[0])
			case <-done:
				return
			}
		}
	}()
	err = sess.Wait()
	if r := s.conn.reason(); r != "" {
		return r
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return "the session ended (the shell exited)"
	case errors.As(err, &exit):
		return fmt.Sprintf("the session ended (the shell exited with status %d)", exit.ExitStatus())
	default:
		return "the session ended: " + err.Error()
	}
}

// certAuthority returns the key of the @cert-authority line.
func certAuthority(knownHosts string) (ssh.PublicKey, error) {
	b := []byte(knownHosts)
	for len(b) > 0 {
		marker, _, pub, _, rest, err := ssh.ParseKnownHosts(b)
		if err != nil {
			break
		}
		if marker == "cert-authority" {
			return pub, nil
		}
		b = rest
	}
	return nil, errors.New("the relay sent no host CA (@cert-authority line): cannot check the agent's host certificate")
}

// jsWriter hands bytes to a JavaScript function as a Uint8Array.
type jsWriter struct{ fn js.Value }

func (w *jsWriter) Write(p []byte) (int, error) {
	a := js.Global().Get("Uint8Array").New(len(p))
	js.CopyBytesToJS(a, p)
	w.fn.Invoke(a)
	return len(p), nil
}

var _ io.Writer = (*jsWriter)(nil)
