//go:build js && wasm

package main

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall/js"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/wire"
)

// endWait is how long a desktop whose VNC server closed waits for the relay
// to say why the session ended (the user ended it, a limit) before saying
// only that the VNC server closed: the agent stops the server first, and the
// relay's reason follows within its own grace (1 s) and drain (2 s) times.
const endWait = 4 * time.Second

// startDesktop starts a remote desktop session: the desktop request, then
// the RFB bytes of a direct-tcpip channel to the VNC server it names.
func startDesktop(signer ssh.Signer, opts js.Value) js.Value {
	s := newSession(opts)
	toVNC := newQueue()
	s.handle.Set("write", js.FuncOf(func(_ js.Value, args []js.Value) any {
		toVNC.push(bytesOf(args[0]))
		return nil
	}))
	return s.start(func() string { return s.desktop(signer, toVNC) }, toVNC.close)
}

// desktop runs the session and returns how it ended.
func (s *session) desktop(signer ssh.Signer, toVNC *queue) string {
	client, msg := s.dial(signer)
	if client == nil {
		return msg
	}
	defer client.Close()
	ok, payload, err := client.SendRequest(wire.DesktopRequest, true, nil)
	if err != nil {
		return s.why("ask the agent for the desktop: " + err.Error())
	}
	if !ok {
		if m := strings.TrimSpace(string(payload)); m != "" {
			return m
		}
		return "the agent refused the desktop and gave no reason (an agent older than the desktop feature?)"
	}
	var rep wire.DesktopReply
	if err := ssh.Unmarshal(payload, &rep); err != nil {
		return "the agent's desktop reply: " + err.Error()
	}
	addr := net.JoinHostPort(rep.Host, strconv.FormatUint(uint64(rep.Port), 10))
	vnc, err := client.Dial("tcp", addr)
	if err != nil {
		return s.why("open a channel to the desktop's VNC server at " + addr + ": " + err.Error())
	}
	defer vnc.Close()
	go func() { // owned by this session: ends when toVNC closes (cleanup) or the channel fails
		for {
			b, ok := toVNC.pop()
			if !ok {
				return
			}
			if _, err := vnc.Write(b); err != nil {
				return
			}
		}
	}()
	info := js.Global().Get("Object").New()
	info.Set("host", rep.Host)
	info.Set("port", int(rep.Port))
	info.Set("password", rep.Password)
	info.Set("viewOnly", rep.ViewOnly)
	info.Set("server", rep.Server)
	s.opts.Call("ready", info)
	_, err = io.Copy(&jsWriter{fn: s.opts.Get("output")}, vnc)
	if r := s.conn.reason(); r != "" {
		return r
	}
	// The VNC server closed its side: the session may have ended (the agent
	// stops the server first), in which case the relay's reason follows.
	select {
	case <-s.conn.closed:
		return s.conn.reason()
	case <-time.After(endWait):
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "the desktop ended: " + err.Error()
	}
	return "the desktop ended: the VNC server closed the connection"
}
