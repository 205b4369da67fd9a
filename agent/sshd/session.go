package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/asciicast"
)

const (
	maxEnvVars   = 64
	maxEnvValue  = 4096
	maxCommand   = 64 << 10
	drainGrace   = 2 * time.Second // output still arriving after the process ended and its group was killed
	copyBufBytes = 32 << 10
)

// job is what a session channel runs: an OS process or the in-process sftp server.
type job interface {
	stop()                    // end it now; idempotent
	resize(cols, rows int)    // a terminal's new size; no-op without one
	signal(name string) error // deliver a signal ("INT", "TERM", ...)
}

// exitStatus is how a job ended.
type exitStatus struct {
	code   int
	signal string // set when a signal killed it, e.g. "KILL"
	core   bool
}

// ptyRequest is the terminal a client asked for.
type ptyRequest struct {
	term       string
	cols, rows int
}

// session is one "session" channel. Its fields are used by the goroutine that
// runs serveSession only, except where noted.
type session struct {
	srv     *server
	num     int
	log     zerolog.Logger
	noticed chan struct{} // closed once the client was told why the session ends, or the channel is gone
	once    sync.Once

	ch      ssh.Channel
	env     []string
	pty     *ptyRequest
	used    bool // a shell, exec or subsystem request was handled
	job     job
	kind    string
	done    bool              // the job's exit was reported
	closed  bool              // the channel was closed
	exited  chan exitStatus   // the job's end, sent once by its waiter (buffered)
	rec     *asciicast.Writer // the recording, for a terminal session that is recorded
	wg      sync.WaitGroup    // the job's goroutines
	started time.Time
}

func newSession(s *server, num int) *session {
	return &session{
		srv:     s,
		num:     num,
		log:     s.log.With().Int("channel", num).Logger(),
		noticed: make(chan struct{}),
		exited:  make(chan exitStatus, 1),
	}
}

func (sess *session) markNoticed() { sess.once.Do(func() { close(sess.noticed) }) }

// serveSession runs a session channel until it closes, then waits for its goroutines.
func (s *server) serveSession(ctx context.Context, nc ssh.NewChannel, sess *session) {
	defer s.unregister(sess)
	defer sess.markNoticed()
	ch, reqs, err := nc.Accept()
	if err != nil {
		sess.log.Debug().Err(err).Msg("accept session channel")
		return
	}
	sess.ch = ch
	sess.loop(ctx, reqs)
	sess.wg.Wait()
}

func (sess *session) loop(ctx context.Context, reqs <-chan *ssh.Request) {
	ended := ctx.Done()
	exited := sess.exited
	for {
		select {
		case req, ok := <-reqs:
			if !ok { // closed by the client, or the connection ended
				sess.stopJob()
				sess.close()
				return
			}
			sess.handle(req)
		case st := <-exited:
			exited = nil
			sess.done = true
			sess.sendExit(st)
			sess.close()
			sess.markNoticed()
		case <-ended:
			ended = nil
			sess.notify(endMessage(context.Cause(ctx)))
		}
	}
}

// notify tells the client why the session ends, stops the job and closes the channel.
func (sess *session) notify(msg string) {
	defer sess.markNoticed()
	if sess.closed {
		return
	}
	_, _ = sess.ch.Stderr().Write([]byte("patchbay: session ended: " + msg + "\r\n"))
	if sess.job != nil && !sess.done {
		sess.stopJob()
		sess.done = true
		sess.sendExit(exitStatus{code: 255})
	}
	sess.close()
}

func (sess *session) stopJob() {
	if sess.job != nil {
		sess.job.stop()
	}
}

func (sess *session) close() {
	if !sess.closed {
		sess.closed = true
		_ = sess.ch.Close()
	}
}

// sendExit reports the job's end: EOF, then exit-status (or exit-signal),
// before the channel is closed (scp fails otherwise).
func (sess *session) sendExit(st exitStatus) {
	if sess.closed {
		return
	}
	_ = sess.ch.CloseWrite()
	if st.signal != "" {
		_, _ = sess.ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal string
			Core   bool
			Msg    string
			Lang   string
		}{st.signal, st.core, "", ""}))
	} else {
		_, _ = sess.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(st.code)}))
	}
	sess.log.Info().Str("kind", sess.kind).Int("exit_status", st.code).Str("signal", st.signal).
		Dur("duration", time.Since(sess.started)).Msg("ssh channel finished")
}

// deny turns down a shell, exec or subsystem request. The request is
// accepted so that the client shows the message (OpenSSH exits at once when
// such a request fails, dropping what arrived on stderr); the message goes to
// stderr, and the channel ends with exit status 1.
func (sess *session) deny(req *ssh.Request, msg string) {
	sess.log.Warn().Str("request", req.Type).Msg(msg)
	if !sess.closed {
		_, _ = sess.ch.Stderr().Write([]byte(msg + "\r\n")) // before the reply: the client has it when the request returns
	}
	_ = req.Reply(true, nil)
	if sess.closed {
		return
	}
	sess.kind, sess.started, sess.done = req.Type, time.Now(), true
	sess.sendExit(exitStatus{code: 1})
	sess.close()
	sess.markNoticed()
}

// refuse writes msg to the channel's stderr, answers req with false and logs it.
func (sess *session) refuse(req *ssh.Request, msg string) {
	sess.log.Warn().Str("request", req.Type).Msg(msg)
	if !sess.closed {
		_, _ = sess.ch.Stderr().Write([]byte(msg + "\r\n"))
	}
	_ = req.Reply(false, nil)
}

func (sess *session) handle(req *ssh.Request) {
	switch req.Type {
	case "pty-req":
		sess.ptyReq(req)
	case "window-change":
		sess.windowChange(req)
	case "env":
		sess.setenv(req)
	case "shell":
		sess.startShell(req)
	case "exec":
		sess.startExec(req)
	case "subsystem":
		sess.startSubsystem(req)
	case "signal":
		var p struct{ Signal string }
		ok := false
		if ssh.Unmarshal(req.Payload, &p) == nil && sess.job != nil && !sess.done {
			err := sess.job.signal(p.Signal)
			if err != nil {
				sess.log.Debug().Err(err).Msg("signal")
			}
			ok = err == nil
		}
		_ = req.Reply(ok, nil)
	case "auth-agent-req@openssh.com":
		sess.log.Warn().Msg("agent forwarding refused")
		_ = req.Reply(false, nil)
	case "x11-req":
		sess.log.Warn().Msg("X11 forwarding refused")
		_ = req.Reply(false, nil)
	default: // keepalive@openssh.com and anything unknown: answered, refused
		_ = req.Reply(false, nil)
	}
}

func (sess *session) ptyReq(req *ssh.Request) {
	var p struct {
		Term                 string
		Cols, Rows, PxW, PxH uint32
		Modes                string
	}
	if err := ssh.Unmarshal(req.Payload, &p); err != nil || sess.used || !validTerm(p.Term) {
		_ = req.Reply(false, nil)
		return
	}
	if !sess.srv.permits(extPTY) {
		sess.refuse(req, "patchbay: terminal refused: the certificate does not permit one (no permit-pty extension)")
		return
	}
	if !ptySupported {
		sess.refuse(req, "patchbay: terminal refused: not supported on this system yet; run commands without one (ssh -T)")
		return
	}
	// Terminal modes (Modes) are not applied: the system's defaults are used.
	sess.pty = &ptyRequest{term: p.Term, cols: clampDim(int(p.Cols), 80), rows: clampDim(int(p.Rows), 24)}
	_ = req.Reply(true, nil)
}

var termName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

func validTerm(t string) bool { return termName.MatchString(t) }

func (sess *session) windowChange(req *ssh.Request) {
	var p struct{ Cols, Rows, PxW, PxH uint32 }
	if err := ssh.Unmarshal(req.Payload, &p); err != nil || sess.pty == nil {
		_ = req.Reply(false, nil)
		return
	}
	sess.pty.cols, sess.pty.rows = clampDim(int(p.Cols), 80), clampDim(int(p.Rows), 24)
	if sess.job != nil && !sess.done {
		sess.job.resize(sess.pty.cols, sess.pty.rows)
		if sess.rec != nil {
			if err := sess.rec.Resize(sess.pty.cols, sess.pty.rows); err != nil {
				sess.srv.recordFailed(err)
			}
		}
	}
	_ = req.Reply(true, nil)
}

var lcName = regexp.MustCompile(`^LC_[A-Z]+$`)

// setenv accepts LANG, LC_* and TERM; every other variable is refused.
func (sess *session) setenv(req *ssh.Request) {
	var p struct{ Name, Value string }
	if err := ssh.Unmarshal(req.Payload, &p); err != nil || sess.used {
		_ = req.Reply(false, nil)
		return
	}
	ok := (p.Name == "LANG" || p.Name == "TERM" || lcName.MatchString(p.Name)) &&
		len(p.Value) <= maxEnvValue && utf8.ValidString(p.Value) && !strings.ContainsRune(p.Value, 0) &&
		len(sess.env) < maxEnvVars
	if !ok {
		sess.log.Debug().Str("name", p.Name).Msg("environment variable refused")
		_ = req.Reply(false, nil)
		return
	}
	sess.env = append(sess.env, p.Name+"="+p.Value)
	_ = req.Reply(true, nil)
}

func (sess *session) startShell(req *ssh.Request) {
	s := sess.srv
	if sess.used {
		_ = req.Reply(false, nil)
		return
	}
	sess.used = true
	switch {
	case !s.granted(capShell):
		sess.deny(req, s.refusal("interactive shell", capShell))
	case sess.pty == nil && s.cfg.Record != nil && !s.granted(capExec):
		sess.deny(req, `patchbay: a shell without a terminal is not recorded, so it needs the "exec" capability; connect with a terminal (ssh -t)`)
	default:
		sess.startProcess(req, "shell", "shell", loginShellSpec(s.acct.shell))
	}
}

func (sess *session) startExec(req *ssh.Request) {
	s := sess.srv
	var p struct{ Command string }
	if err := ssh.Unmarshal(req.Payload, &p); err != nil || sess.used {
		_ = req.Reply(false, nil)
		return
	}
	sess.used = true
	if len(p.Command) > maxCommand || strings.ContainsRune(p.Command, 0) {
		sess.deny(req, "patchbay: command refused: longer than 64 KiB or contains NUL")
		return
	}
	kind := "exec"
	if isLegacySCP(p.Command) {
		kind = "scp"
		if !s.granted(capSFTP) && !s.granted(capExec) {
			sess.deny(req, s.refusal("scp", capSFTP, capExec))
			return
		}
	} else if !s.granted(capExec) {
		sess.deny(req, s.refusal("command", capExec))
		return
	}
	sess.log.Info().Str("command", p.Command).Bool("pty", sess.pty != nil).Msg("ssh exec")
	sess.startProcess(req, kind, "exec: "+p.Command, commandSpec(s.acct.shell, p.Command))
}

func (sess *session) startSubsystem(req *ssh.Request) {
	s := sess.srv
	var p struct{ Name string }
	if err := ssh.Unmarshal(req.Payload, &p); err != nil || sess.used {
		_ = req.Reply(false, nil)
		return
	}
	sess.used = true
	if p.Name != "sftp" {
		sess.deny(req, fmt.Sprintf("patchbay: subsystem %.64q is not supported (only sftp)", p.Name))
		return
	}
	if !s.granted(capSFTP) {
		sess.deny(req, s.refusal("sftp", capSFTP))
		return
	}
	sess.log.Info().Msg("ssh sftp")
	if s.cfg.Credential != nil {
		// As another user: a child process under that user's credential.
		spec, err := sftpChildSpec()
		if err != nil {
			sess.deny(req, "patchbay: cannot start the sftp server: "+err.Error())
			return
		}
		sess.startProcess(req, "sftp", "sftp", spec)
		return
	}
	j, err := newSFTPJob(activityRW{sess.ch, s}, s.acct.dir)
	if err != nil {
		sess.deny(req, "patchbay: cannot start the sftp server: "+err.Error())
		return
	}
	sess.job, sess.kind, sess.started = j, "sftp", time.Now()
	_ = req.Reply(true, nil)
	sess.wg.Go(func() { sess.exited <- j.serve() })
}

// startProcess starts spec (on the requested terminal, if any) and its I/O.
func (sess *session) startProcess(req *ssh.Request, kind, marker string, spec procSpec) {
	s := sess.srv
	var rec *asciicast.Writer
	term := ""
	if sess.pty != nil {
		term = sess.pty.term
		var err error
		if rec, err = s.recordingWriter(term, sess.pty.cols, sess.pty.rows); err != nil {
			sess.deny(req, "patchbay: the session cannot start: "+err.Error())
			return
		}
	}
	spec.env = s.processEnv(term, sess.env)
	spec.dir = s.acct.dir
	spec.cred = s.cfg.Credential
	spec.pty = sess.pty
	p, err := startProcess(spec)
	if err != nil {
		sess.deny(req, fmt.Sprintf("patchbay: cannot start %s: %v", kind, err))
		return
	}
	sess.job, sess.kind, sess.rec, sess.started = p, kind, rec, time.Now()
	_ = req.Reply(true, nil)
	if rec != nil {
		if err := rec.Marker(fmt.Sprintf("channel %d: %s", sess.num, marker)); err != nil {
			s.recordFailed(err)
		}
	}
	sess.runIO(p)
}

// runIO starts the goroutines that copy the process's I/O and wait for it.
// The waiter reports the exit once the output has been sent.
func (sess *session) runIO(p *process) {
	s := sess.srv
	var out sync.WaitGroup
	goOut := func(f func()) {
		sess.wg.Add(1)
		out.Add(1)
		go func() {
			defer sess.wg.Done()
			defer out.Done()
			f()
		}()
	}
	if p.tty != nil {
		goOut(func() { sess.copyOut(sess.ch, p.tty, sess.rec) })
		sess.wg.Go(func() { sess.copyIn(p.tty, sess.ch, sess.rec, nil) })
	} else {
		goOut(func() { sess.copyOut(sess.ch, p.stdout, nil) })
		goOut(func() { sess.copyOut(sess.ch.Stderr(), p.stderr, nil) })
		sess.wg.Go(func() { sess.copyIn(p.stdin, sess.ch, nil, p.closeStdin) })
	}
	sess.wg.Go(func() {
		st := p.wait()
		// Nothing the technician started outlives the process: kill what is left of its group.
		p.stop()
		drained := make(chan struct{})
		sess.wg.Go(func() { out.Wait(); close(drained) })
		timer := time.NewTimer(drainGrace)
		select {
		case <-drained:
		case <-timer.C:
			s.log.Debug().Msg("output still open after the process ended; closing it")
		}
		timer.Stop()
		p.release() // unblocks any copier still reading or writing
		<-drained
		sess.exited <- st
	})
}

// copyOut copies a process's output to the client, recording it when rec is set.
func (sess *session) copyOut(dst io.Writer, src io.Reader, rec *asciicast.Writer) {
	var record func([]byte) error
	if rec != nil {
		record = rec.Output
	}
	sess.copyRecorded(dst, src, record, nil)
}

// copyIn copies the client's input to a process, recording it when rec is set;
// at the client's EOF it calls eof (closing a pipe; a terminal has no EOF).
func (sess *session) copyIn(dst io.Writer, src io.Reader, rec *asciicast.Writer, eof func()) {
	var record func([]byte) error
	if rec != nil {
		record = rec.Input
	}
	sess.copyRecorded(dst, src, record, eof)
}

// copyRecorded copies src to dst, counting activity and handing each chunk
// to record (if set; a recording failure is reported once and recording
// stops). At src's io.EOF it calls eof, if set. Other read errors (EIO from
// a terminal whose last user left, a closed pipe) just end the copy.
func (sess *session) copyRecorded(dst io.Writer, src io.Reader, record func([]byte) error, eof func()) {
	buf := make([]byte, copyBufBytes)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			sess.srv.touch()
			if record != nil {
				if rerr := record(buf[:n]); rerr != nil {
					sess.srv.recordFailed(rerr)
					record = nil
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && eof != nil {
				eof()
			}
			return
		}
	}
}

// activityRW counts reads and writes on a channel as activity.
type activityRW struct {
	ssh.Channel
	srv *server
}

func (a activityRW) Read(p []byte) (int, error) {
	n, err := a.Channel.Read(p)
	if n > 0 {
		a.srv.touch()
	}
	return n, err
}

func (a activityRW) Write(p []byte) (int, error) {
	n, err := a.Channel.Write(p)
	if n > 0 {
		a.srv.touch()
	}
	return n, err
}
