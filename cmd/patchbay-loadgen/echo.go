package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

// Session reasons the echo agent understands: "<verb> <bytes>".
const (
	echoSource = "make bench: relay source" // write that many bytes, then close
	echoSink   = "make bench: relay sink"   // read that many bytes, answer one byte
)

// echoAgent is a simulated agent in this process, over the real agent link
// code (agent/link: WSS, mutual TLS, mux, the real agent's default buffer
// sizes), that approves every session at once and, instead of an SSH
// server, sources or sinks bytes on the session stream. With it the
// relayed byte stream (technician websocket -> relay -> mux stream on the
// agent's link) is measured without SSH on either end.
type echoAgent struct {
	id     string // agent ID
	signer *receipt.Signer
	l      *link.Link
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned (its stream handlers too)

	mu      sync.Mutex
	reasons map[string]string // session ID -> reason, from the request
}

// startEchoAgent runs the link of id until stop.
func startEchoAgent(id *identity.Identity, hostname string) *echoAgent {
	e := &echoAgent{id: id.AgentID, signer: receipt.NewSigner(id.Cert), reasons: map[string]string{}, done: make(chan struct{})}
	inv := wire.Inventory{Hostname: hostname, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: "loadgen-" + version}
	e.l = link.New(id, link.Options{
		Version:   "loadgen-" + version,
		Inventory: func(context.Context) wire.Inventory { return inv },
		Control:   e.control,
		Handle:    e.handle,
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		defer close(e.done)
		_ = e.l.Run(ctx)
	}()
	return e
}

// stop closes the link and waits for it.
func (e *echoAgent) stop() {
	e.cancel()
	<-e.done
}

// control approves every session request (on the link's Run goroutine).
func (e *echoAgent) control(env wire.Envelope) error {
	if env.Type != wire.MsgSessionRequest {
		return nil
	}
	var req wire.SessionRequest
	if err := wire.DecodeBody(env, &req); err != nil {
		return err
	}
	e.mu.Lock()
	e.reasons[req.SessionID] = req.Reason
	e.mu.Unlock()
	sess := e.l.Session()
	if sess == nil {
		return nil
	}
	// The relay acts only on a decision signed by the agent's key.
	signed, err := e.signer.Sign(receipt.Receipt{Kind: receipt.KindSession, ID: req.SessionID, AgentID: e.id,
		Technician: req.Technician, Reason: req.Reason, Capabilities: req.Capabilities, Decision: receipt.Approved,
		By: "policy", Message: "approved by the load generator", Time: time.Now()})
	if err != nil {
		return err
	}
	return sess.Send(wire.MsgSessionAnswer, "", wire.SessionAnswer{
		SessionID: req.SessionID, Approved: true, Mode: "unattended", By: "policy",
		Message: "approved by the load generator", Capabilities: req.Capabilities, Receipt: &signed,
	})
}

// handle serves one session stream (on a goroutine the mux session owns).
func (e *echoAgent) handle(st *mux.Stream) {
	defer st.Close()
	what, id, ok := wire.ParseSessionStreamKind(st.Kind())
	if !ok || what != "ssh" {
		return
	}
	e.mu.Lock()
	reason := e.reasons[id]
	delete(e.reasons, id)
	e.mu.Unlock()
	var verb, arg string
	if i := strings.LastIndexByte(reason, ' '); i > 0 {
		verb, arg = reason[:i], reason[i+1:]
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	end := wire.SessionEnd{SessionID: id, By: "agent", Reason: "done"}
	switch {
	case err != nil || n <= 0:
		end.Reason = fmt.Sprintf("unknown request %q", reason)
	case verb == echoSource:
		if err := fill(st, n); err != nil {
			end.Reason = "write: " + err.Error()
		} else {
			// The relay drops what it still buffers of a stream when the
			// agent's session_end arrives (server/sessions: bridge), so
			// wait for the technician to leave before saying it ended.
			_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = drain(st, 0)
		}
	case verb == echoSink:
		if _, err := drain(st, n); err != nil {
			end.Reason = "read: " + err.Error()
		} else if _, err := st.Write([]byte{1}); err != nil {
			end.Reason = "acknowledge: " + err.Error()
		} else {
			// Let the technician read the acknowledgement and close first.
			_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = drain(st, 0)
		}
	default:
		end.Reason = fmt.Sprintf("unknown request %q", reason)
	}
	if sess := e.l.Session(); sess != nil {
		_ = sess.Send(wire.MsgSessionEnd, "", end)
	}
}
