package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/asciicast"
	"github.com/patchbay/patchbay/internal/wire"
)

// Config configures one SSH session.
type Config struct {
	// HostSigner is the agent's host key, certified by the relay's host CA
	// (ssh.NewCertSigner), so that clients with the @cert-authority line accept it.
	HostSigner ssh.Signer
	// UserCA is the only authority whose user certificates are accepted.
	UserCA ssh.PublicKey
	// Technician is who the session was approved for: the certificate must
	// have this key ID and principal.
	Technician string
	// Capabilities are the approved capabilities (wire.CapShell, CapExec,
	// CapSFTP, CapForward); anything else is refused.
	Capabilities []string
	// Shell runs shells and commands; default $SHELL, else /bin/sh (cmd.exe on Windows).
	Shell string
	// Dir is the working directory; default the account's home directory.
	Dir string
	// Env is extra environment ("K=V") for every process.
	Env []string
	// Credential, if set, runs every process (and the sftp server) as this
	// local user; the agent must be root. Nil runs them as the agent's account.
	Credential *Credential
	// IdleTimeout ends the session after this long without channel data either way (0: never).
	IdleTimeout time.Duration
	// MaxDuration ends the session this long after it started (0: never).
	MaxDuration time.Duration
	// Record, if set, is called once when the first terminal process starts and
	// returns where to write the asciicast v2 recording; Serve closes it at the end.
	Record func(h asciicast.Header) (io.WriteCloser, error)
	// Desktop, if set, serves wire.DesktopRequest in a session approved for
	// wire.CapDesktop or wire.CapDesktopView; Serve calls its Stop at the end.
	Desktop Desktop
	// ViewOnlyCopy copies a view-only session's VNC client bytes to the
	// server, dropping input (desktop.CopyViewOnly). Without it a session
	// approved for wire.CapDesktopView only is refused the desktop.
	ViewOnlyCopy CopyFunc
	// Revocations, if set, holds the certificate serials the relay revoked:
	// a revoked certificate is refused, and the connection that
	// authenticated with one ends as soon as it is revoked (ErrRevoked).
	Revocations *Revocations
	// Log receives the session's log lines; the caller adds session fields.
	Log zerolog.Logger
}

// Sentinel errors returned by Serve (through errors.Is) when a limit ended the session.
var (
	ErrIdle        = errors.New("idle timeout")
	ErrMaxDuration = errors.New("maximum duration reached")
)

// limitError is a limit's cause: its text is what the client is told
// ("idle for 15m0s"), and it matches its sentinel with errors.Is.
type limitError struct {
	sentinel error
	msg      string
}

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return e.sentinel }

// errClientGone is the internal cause of a session the client ended.
var errClientGone = errors.New("client disconnected")

const (
	handshakeTimeout = 2 * time.Minute // key exchange and auth (a passphrase may be typed)
	noticeGrace      = 700 * time.Millisecond
	maxSessions      = 10 // concurrent session channels (OpenSSH's MaxSessions)
	maxForwards      = 64 // concurrent direct-tcpip channels
	serverVersion    = "SSH-2.0-Patchbay"
)

// server is the state of one Serve call.
type server struct {
	cfg     Config
	acct    account
	log     zerolog.Logger
	perms   *ssh.Permissions
	conn    *ssh.ServerConn
	cancel  context.CancelCauseFunc
	start   time.Time
	lastAct atomic.Int64 // time.Since(start) of the last channel data, in ns
	rec     recorder
	wg      sync.WaitGroup // every goroutine of the session

	mu       sync.Mutex
	closing  bool
	sessions map[*session]struct{}
	forwards int
	nextNum  int
	desktop  desktopState
}

// Serve runs an SSH server on conn until the client disconnects, a limit is
// hit, or ctx ends. It owns conn and closes it, and returns only once every
// goroutine and process it started has ended.
//
// When ctx is cancelled with a cause (context.WithCancelCause), Serve writes
// "patchbay: session ended: <cause>\r\n" to the stderr of every open session
// channel, sends exit-status 255 where a process was running, and closes the
// connection within a second. The limits do the same with "idle for 15m0s" /
// "maximum duration 4h0m0s reached". The returned error is nil when the client
// disconnected, otherwise why the session ended: an error matching ErrIdle or
// ErrMaxDuration, the ctx cause, a handshake or authentication failure.
func Serve(ctx context.Context, conn net.Conn, cfg Config) error {
	if err := cfg.check(); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sshd: %w", err)
	}
	acct, err := resolveAccount(&cfg)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("sshd: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &server{
		cfg:      cfg,
		acct:     acct,
		log:      cfg.Log.With().Str("technician", cfg.Technician).Logger(),
		cancel:   cancel,
		sessions: map[*session]struct{}{},
	}

	sconn, chans, reqs, err := s.handshake(ctx, conn)
	if err != nil {
		return err
	}
	s.conn = sconn
	s.perms = sconn.Permissions
	s.start = time.Now()
	s.log = s.log.With().Str("ssh_user", sconn.User()).Logger()
	s.log.Info().Str("client_version", string(sconn.ClientVersion())).
		Strs("capabilities", cfg.Capabilities).Str("account", acct.name).Msg("ssh session started")

	s.wg.Go(func() {
		err := sconn.Wait()
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			s.log.Debug().Err(err).Msg("ssh connection ended")
		}
		cancel(errClientGone)
	})
	s.wg.Go(func() { s.globalRequests(ctx, reqs) })
	s.wg.Go(func() { s.acceptChannels(ctx, chans) })
	s.wg.Go(func() { s.watchLimits(ctx) })
	if stop := s.watchRevocation(); stop != nil {
		defer stop()
	}

	<-ctx.Done()
	cause := context.Cause(ctx)
	if cause != errClientGone {
		s.awaitNotices(noticeGrace)
	}
	_ = sconn.Close()
	s.wg.Wait()
	if err := s.rec.close(); err != nil {
		s.log.Warn().Err(err).Msg("close recording")
	}
	if cause == errClientGone {
		s.log.Info().Msg("ssh session ended: client disconnected")
		return nil
	}
	s.log.Info().Str("reason", endMessage(cause)).Msg("ssh session ended")
	return cause
}

func (cfg *Config) check() error {
	switch {
	case cfg.HostSigner == nil:
		return errors.New("config: no host key")
	case cfg.UserCA == nil:
		return errors.New("config: no user CA")
	case cfg.Technician == "":
		return errors.New("config: no technician")
	case cfg.IdleTimeout < 0 || cfg.MaxDuration < 0:
		return errors.New("config: negative limit")
	}
	return nil
}

// handshake runs the SSH key exchange and authentication, bounded by
// handshakeTimeout and ctx. On failure conn is closed.
func (s *server) handshake(ctx context.Context, conn net.Conn) (*ssh.ServerConn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	config := &ssh.ServerConfig{
		ServerVersion: serverVersion,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			perms, err := s.authenticate(key)
			if err != nil {
				ev := s.log.Warn().Err(err).Str("ssh_user", meta.User()).Str("key", ssh.FingerprintSHA256(key))
				if cert, ok := key.(*ssh.Certificate); ok {
					ev = ev.Uint64("serial", cert.Serial).Str("key_id", cert.KeyId).Bool("revoked", errors.Is(err, ErrRevoked))
				}
				ev.Msg("ssh authentication refused")
			}
			return perms, err
		},
	}
	config.AddHostKey(s.cfg.HostSigner)

	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case <-ctx.Done():
			_ = conn.Close()
		case <-stop:
		}
	})
	sconn, chans, reqs, err := ssh.NewServerConn(conn, config)
	close(stop)
	watcher.Wait()
	if err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, context.Cause(ctx)
		}
		return nil, nil, nil, fmt.Errorf("sshd: handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return sconn, chans, reqs, nil
}

// authenticate accepts only a user certificate from UserCA for Technician.
// The returned permissions carry the certificate's extensions.
func (s *server) authenticate(key ssh.PublicKey) (*ssh.Permissions, error) {
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("a plain key, not a certificate: only certificates from the relay's user CA are accepted")
	}
	if cert.CertType != ssh.UserCert {
		return nil, fmt.Errorf("certificate %q is a host certificate", cert.KeyId)
	}
	if !bytes.Equal(cert.SignatureKey.Marshal(), s.cfg.UserCA.Marshal()) {
		return nil, fmt.Errorf("certificate %q signed by another CA (%s), want the relay's user CA (%s)",
			cert.KeyId, ssh.FingerprintSHA256(cert.SignatureKey), ssh.FingerprintSHA256(s.cfg.UserCA))
	}
	if cert.KeyId != s.cfg.Technician {
		return nil, fmt.Errorf("certificate key ID %q, but the session was approved for technician %q", cert.KeyId, s.cfg.Technician)
	}
	checker := ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), s.cfg.UserCA.Marshal()) },
	}
	if err := checker.CheckCert(s.cfg.Technician, cert); err != nil {
		return nil, fmt.Errorf("certificate %q (serial %d, valid %s to %s): %w", cert.KeyId, cert.Serial,
			certTime(cert.ValidAfter), certTime(cert.ValidBefore), err)
	}
	if err := s.checkRevoked(cert); err != nil {
		return nil, err
	}
	ext := make(map[string]string, len(cert.Extensions)+2)
	for k, v := range cert.Extensions {
		ext[k] = v
	}
	ext[extKeyID] = cert.KeyId
	ext[extSerial] = strconv.FormatUint(cert.Serial, 10)
	return &ssh.Permissions{Extensions: ext}, nil
}

// Keys this package adds to the connection's Permissions.Extensions (an SSH
// extension name never contains "@patchbay.internal").
const (
	extKeyID  = "key-id@patchbay.internal"
	extSerial = "serial@patchbay.internal"
	extPTY    = "permit-pty"
	extFwd    = "permit-port-forwarding"
)

func certTime(t uint64) string {
	if t == ssh.CertTimeInfinity {
		return "forever"
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// permits reports whether the certificate carries extension ext.
func (s *server) permits(ext string) bool {
	_, ok := s.perms.Extensions[ext]
	return ok
}

// granted reports whether the user approved capability c.
func (s *server) granted(c string) bool { return slices.Contains(s.cfg.Capabilities, c) }

// refusal is the message for a request that needs one of caps.
func (s *server) refusal(what string, caps ...string) string {
	need := strconv.Quote(caps[0])
	for _, c := range caps[1:] {
		need += " or " + strconv.Quote(c)
	}
	approved := "nothing"
	if len(s.cfg.Capabilities) > 0 {
		approved = fmt.Sprintf("%q", s.cfg.Capabilities)
	}
	return fmt.Sprintf("patchbay: %s refused: it needs the %s capability, and this session was approved for %s", what, need, approved)
}

// touch records channel activity for the idle timeout.
func (s *server) touch() { s.lastAct.Store(int64(time.Since(s.start))) }

// globalRequests answers connection-level requests until the connection ends:
// keepalives get an answer, remote forwarding is refused, the desktop
// request starts the session's VNC server (or says why not).
func (s *server) globalRequests(ctx context.Context, reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case wire.DesktopRequest:
			s.desktopRequest(ctx, req)
			continue
		case "tcpip-forward", "streamlocal-forward@openssh.com":
			s.log.Warn().Str("request", req.Type).Msg("remote port forwarding refused")
		case "keepalive@openssh.com", "no-more-sessions@openssh.com", "cancel-tcpip-forward":
		default:
			s.log.Debug().Str("request", req.Type).Msg("unknown global request refused")
		}
		_ = req.Reply(false, nil)
	}
}

// acceptChannels starts a handler for each new channel until the connection ends.
func (s *server) acceptChannels(ctx context.Context, chans <-chan ssh.NewChannel) {
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			sess, reason := s.register()
			if sess == nil {
				_ = nc.Reject(ssh.ResourceShortage, reason)
				continue
			}
			s.wg.Go(func() { s.serveSession(ctx, nc, sess) })
		case "direct-tcpip":
			if !s.addForward() {
				_ = nc.Reject(ssh.ResourceShortage, fmt.Sprintf("patchbay: more than %d forwarded connections at once", maxForwards))
				continue
			}
			s.wg.Go(func() {
				defer s.doneForward()
				s.serveForward(ctx, nc)
			})
		case "direct-streamlocal@openssh.com":
			s.log.Warn().Msg("unix socket forwarding refused")
			_ = nc.Reject(ssh.Prohibited, "patchbay: forwarding to Unix sockets is not allowed")
		default:
			s.log.Warn().Str("channel_type", nc.ChannelType()).Msg("channel type refused")
			_ = nc.Reject(ssh.UnknownChannelType, fmt.Sprintf("patchbay: channel type %q is not supported", nc.ChannelType()))
		}
	}
}

// register adds a new session channel, or says why it cannot be opened.
func (s *server) register() (*session, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return nil, "patchbay: the session is ending"
	case len(s.sessions) >= maxSessions:
		return nil, fmt.Sprintf("patchbay: more than %d session channels at once", maxSessions)
	}
	s.nextNum++
	sess := newSession(s, s.nextNum)
	s.sessions[sess] = struct{}{}
	return sess, ""
}

func (s *server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

func (s *server) addForward() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.forwards >= maxForwards {
		return false
	}
	s.forwards++
	return true
}

func (s *server) doneForward() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forwards--
}

// awaitNotices stops new channels and waits, at most grace, until every open
// session channel has told its client why the session ends.
func (s *server) awaitNotices(grace time.Duration) {
	s.mu.Lock()
	s.closing = true
	var pending []<-chan struct{}
	for sess := range s.sessions {
		pending = append(pending, sess.noticed)
	}
	s.mu.Unlock()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for _, ch := range pending {
		select {
		case <-ch:
		case <-timer.C:
			return
		}
	}
}

// watchLimits ends the session at the idle timeout or the maximum duration.
func (s *server) watchLimits(ctx context.Context) {
	var maxC, idleC <-chan time.Time
	if d := s.cfg.MaxDuration; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		maxC = t.C
	}
	var idle *time.Timer
	if d := s.cfg.IdleTimeout; d > 0 {
		idle = time.NewTimer(d)
		defer idle.Stop()
		idleC = idle.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-maxC:
			s.cancel(&limitError{ErrMaxDuration, fmt.Sprintf("maximum duration %v reached", s.cfg.MaxDuration)})
			return
		case <-idleC:
			quiet := time.Since(s.start) - time.Duration(s.lastAct.Load())
			if quiet >= s.cfg.IdleTimeout {
				s.cancel(&limitError{ErrIdle, fmt.Sprintf("idle for %v", s.cfg.IdleTimeout)})
				return
			}
			idle.Reset(s.cfg.IdleTimeout - quiet)
		}
	}
}

// endMessage is what the client is told about why the session ended.
func endMessage(cause error) string {
	switch {
	case cause == nil:
		return "ended"
	case cause == context.Canceled:
		return "ended by the agent"
	case cause == context.DeadlineExceeded:
		return "time limit reached"
	}
	return cause.Error()
}

// account is who processes run as.
type account struct {
	name, home, shell, dir string
}

// resolveAccount works out the account, shell and working directory.
func resolveAccount(cfg *Config) (account, error) {
	var a account
	var u *user.User
	var err error
	if cfg.Credential != nil {
		u, err = lookupCredential(cfg.Credential)
	} else {
		u, err = user.Current()
	}
	if err == nil {
		a.name, a.home = u.Username, u.HomeDir
	} else {
		// An account without a passwd entry (containers, some service users).
		if cfg.Credential != nil {
			return a, fmt.Errorf("account: %w", err)
		}
		a.name = strconv.Itoa(os.Getuid())
		a.home, _ = os.UserHomeDir()
	}
	a.shell = cfg.Shell
	if a.shell == "" {
		a.shell = defaultShell()
	}
	a.dir = cfg.Dir
	if a.dir == "" {
		a.dir = a.home
	}
	if fi, err := os.Stat(a.dir); a.dir == "" || err != nil || !fi.IsDir() {
		if cfg.Dir != "" {
			return a, fmt.Errorf("working directory %s: not a directory (%v)", cfg.Dir, err)
		}
		a.dir = rootDir()
	}
	if a.home == "" {
		a.home = a.dir
	}
	return a, nil
}

// processEnv is the environment of a session's processes.
func (s *server) processEnv(term string, client []string) []string {
	env := []string{
		"HOME=" + s.acct.home,
		"USER=" + s.acct.name,
		"LOGNAME=" + s.acct.name,
		"SHELL=" + s.acct.shell,
		"PATH=" + defaultPath(),
		"PATCHBAY_TECHNICIAN=" + s.cfg.Technician,
	}
	env = append(env, platformEnv()...)
	if term != "" {
		env = append(env, "TERM="+term)
	}
	env = append(env, s.cfg.Env...)
	return append(env, client...)
}

// recorder opens the recording on first use and hands out its writer.
type recorder struct {
	mu     sync.Mutex
	called bool
	w      *asciicast.Writer
	wc     io.WriteCloser
	err    error
}

// writer returns the recording's writer, calling open the first time.
func (r *recorder) writer(open func() (io.WriteCloser, asciicast.Header, error)) (*asciicast.Writer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.called {
		return r.w, r.err
	}
	r.called = true
	wc, h, err := open()
	if err != nil {
		r.err = fmt.Errorf("start recording: %w", err)
		return nil, r.err
	}
	w, err := asciicast.NewWriter(wc, h, time.Now())
	if err != nil {
		_ = wc.Close()
		r.err = fmt.Errorf("start recording: %w", err)
		return nil, r.err
	}
	r.w, r.wc = w, wc
	return w, nil
}

func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wc == nil {
		return nil
	}
	err := r.w.Close()
	if cerr := r.wc.Close(); err == nil {
		err = cerr
	}
	r.wc = nil
	return err
}

// recordingWriter returns the recording for a terminal of size w x h, or nil
// when the session is not recorded.
func (s *server) recordingWriter(term string, width, height int) (*asciicast.Writer, error) {
	if s.cfg.Record == nil {
		return nil, nil
	}
	return s.rec.writer(func() (io.WriteCloser, asciicast.Header, error) {
		h := asciicast.Header{
			Version:   2,
			Width:     clampDim(width, 80),
			Height:    clampDim(height, 24),
			Timestamp: time.Now().Unix(),
			Title:     "Patchbay session of " + s.cfg.Technician,
			Env:       map[string]string{"TERM": term, "SHELL": s.acct.shell},
		}
		wc, err := s.cfg.Record(h)
		if err == nil && wc == nil {
			err = errors.New("no writer")
		}
		return wc, h, err
	})
}

// recordFailed ends the whole session: it must not go on unrecorded.
func (s *server) recordFailed(err error) {
	s.log.Error().Err(err).Msg("recording failed; ending the session")
	s.cancel(fmt.Errorf("recording failed: %w", err))
}

func clampDim(v, def int) int {
	switch {
	case v <= 0:
		return def
	case v > asciicast.MaxDimension:
		return asciicast.MaxDimension
	}
	return v
}

// wire's capability names, for the package's own use.
const (
	capShell   = wire.CapShell
	capExec    = wire.CapExec
	capSFTP    = wire.CapSFTP
	capForward = wire.CapForward
)
