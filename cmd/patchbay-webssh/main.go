//go:build js && wasm

// Command patchbay-webssh is the web console's SSH client, compiled to
// WebAssembly (GOOS=js GOARCH=wasm) by make web and served by the relay as
// /assets/vendor/webssh.wasm. It makes the browser's ed25519 key pair (the
// private key never leaves this program's memory), and runs an SSH session
// over the bytes of the session websocket, which the page's session.js
// carries: the relay only bridges them, exactly as for patchbay ssh.
//
// It sets one global, patchbayWebSSH, with:
//
//	publicKey() string
//	    the key's public half (authorized_keys format), to certify with
//	    POST /v1/ssh/certificate
//	connect({certificate, knownHosts, agentID, cols, rows, send, output, closed}) handle
//	    a terminal: starts SSH over a websocket the page opened and the
//	    relay approved: send(Uint8Array) writes to the websocket,
//	    output(Uint8Array) gets the terminal's bytes, closed(message) is
//	    called once at the end. The handle has receive(Uint8Array) (bytes
//	    from the websocket), input(string) (keystrokes), resize(cols, rows)
//	    and close(message).
//	desktop({certificate, knownHosts, agentID, send, ready, output, closed}) handle
//	    a remote desktop: after SSH authentication it sends the
//	    desktop@patchbay.dev request, opens a direct-tcpip channel to the
//	    VNC server the agent names and calls ready({host, port, password,
//	    viewOnly, server}); then output(Uint8Array) gets the server's RFB
//	    bytes and the handle's write(Uint8Array) sends the VNC client's.
//	    A refusal (the agent's message) or the end comes to closed(message).
//	    The handle has receive, write and close(message).
//	auditVerifier() verifier
//	    checks the relay's audit chain in the page (audit.go): add(page
//	    JSON), finish(headSeq, headHash), count().
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"syscall/js"

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
		return startTerminal(signer, args[0])
	}))
	api.Set("desktop", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 {
			panic("desktop wants one options object")
		}
		return startDesktop(signer, args[0])
	}))
	api.Set("auditVerifier", js.FuncOf(func(js.Value, []js.Value) any { return newAuditVerifier() }))
	js.Global().Set("patchbayWebSSH", api)
	select {} // serve the page for as long as it lives
}

// session is what terminals and desktops share: SSH over the bytes the page
// hands in, a handle for the page with receive and close, and one closed
// call at the end.
type session struct {
	conn   *wsConn
	opts   js.Value
	handle js.Value
}

func newSession(opts js.Value) *session {
	s := &session{conn: newWSConn(opts.Get("send")), opts: opts, handle: js.Global().Get("Object").New()}
	s.handle.Set("receive", js.FuncOf(func(_ js.Value, args []js.Value) any {
		s.conn.in.push(bytesOf(args[0]))
		return nil
	}))
	s.handle.Set("close", js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "the connection closed"
		if len(args) > 0 && args[0].Type() == js.TypeString {
			msg = args[0].String()
		}
		s.conn.closeWith(msg)
		return nil
	}))
	return s
}

// start runs the session in its own goroutine, which owns it until run
// returns; then the connection closes, cleanup runs and the page hears why.
func (s *session) start(run func() string, cleanup func()) js.Value {
	go func() {
		msg := run()
		s.conn.closeWith(msg)
		cleanup()
		s.opts.Call("closed", msg)
	}()
	return s.handle
}

// bytesOf copies a Uint8Array (or an ArrayBuffer) into Go.
func bytesOf(v js.Value) []byte {
	if v.InstanceOf(js.Global().Get("ArrayBuffer")) {
		v = js.Global().Get("Uint8Array").New(v)
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b
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
