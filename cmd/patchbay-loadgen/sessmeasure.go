package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/backoff"
)

// measureSetup measures shell session setup at each --setup-concurrency:
// that many technicians in a closed loop, --setup-sessions sessions in all,
// technician w setting up sessions in turn on agents w, w+conc, w+2*conc,
// ..., so that no agent has two sessions being set up at once.
func (s *sessionBench) measureSetup(ctx context.Context) error {
	if len(s.agents) == 0 {
		return errNoAgents
	}
	shell := s.o.sessionShell
	if shell == "" {
		shell = loginShell()
	}
	base, err := shellStart(ctx, shell, 20)
	if err != nil {
		s.r.note("The bare shell start baseline failed: %v.", err)
	}
	s.r.shellStart = base
	step("sessions: bare start of %s as a login shell on a terminal, first byte: p50 %s", shell, ms(pct(base, 50)))
	for _, conc := range s.o.setupConcurrency {
		step("sessions: setup latency, %d sessions, %d at a time", s.o.setupSessions, conc)
		res := s.setupRun(ctx, conc, s.o.setupSessions)
		s.r.setup = append(s.r.setup, res)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		step("  p50 %s, p99 %s (%d failed) over %.1f s; relay %.0f%% of a core",
			ms(pct(res.first, 50)), ms(pct(res.first, 99)), res.failed, res.wall.Seconds(), res.use.pct(res.use.relay))
	}
	return nil
}

// setupRun runs total shell setups, conc at a time.
func (s *sessionBench) setupRun(ctx context.Context, conc, total int) setupResult {
	res := setupResult{conc: conc, n: total}
	timings := make([]setupTiming, total)
	errs := make([]error, total)
	u0 := s.usage()
	var wg sync.WaitGroup
	for w := range conc {
		var mine []*realAgent // agents w, w+conc, w+2*conc, ...: each agent has one technician
		for a := w; a < len(s.agents); a += conc {
			mine = append(mine, s.agents[a])
		}
		wg.Go(func() {
			for i, j := w, 0; i < total && ctx.Err() == nil; i, j = i+conc, j+1 {
				timings[i], errs[i] = s.tech.shellSetup(ctx, mine[j%len(mine)].id)
			}
		})
	}
	wg.Wait()
	res.use = s.usage().sub(u0)
	res.wall = res.use.wall
	for i, err := range errs {
		if err != nil {
			res.failed++
			if res.firstErr == "" {
				res.firstErr = err.Error()
			}
			continue
		}
		t := timings[i]
		res.approved = append(res.approved, t.approved)
		res.handshake = append(res.handshake, t.handshake-t.approved)
		res.shell = append(res.shell, t.first-t.handshake)
		res.first = append(res.first, t.first)
	}
	return res
}

// measureStreams measures bulk throughput through the relay: an SSH channel
// to a real agent both ways, and the relayed byte stream to the echo agent
// both ways. Each is the better of two runs.
func (s *sessionBench) measureStreams(ctx context.Context) error {
	if len(s.agents) == 0 || s.echo == nil {
		return errNoAgents
	}
	n := int64(s.o.streamMiB) << 20
	agent, echo := s.agents[0].id, s.echo.id
	runs := []struct {
		name string
		dst  *transfer
		f    func(context.Context, string, int64) (transfer, error)
		to   string
	}{
		{"relayed byte stream, agent -> technician", &s.r.relayDown, s.tech.relayDownload, echo},
		{"relayed byte stream, technician -> agent", &s.r.relayUp, s.tech.relayUpload, echo},
		{"SSH channel, agent -> technician", &s.r.sshDown, s.tech.sshDownload, agent},
		{"SSH channel, technician -> agent", &s.r.sshUp, s.tech.sshUpload, agent},
	}
	var failed []string
	for _, r := range runs {
		step("sessions: %s, %d MiB, best of 2", r.name, s.o.streamMiB)
		for range 2 {
			u0 := s.usage()
			x, err := r.f(ctx, r.to, n)
			x.use = s.usage().sub(u0)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", r.name, err))
				break
			}
			if x.gbps() > r.dst.gbps() {
				*r.dst = x
			}
		}
		if r.dst.bytes > 0 {
			step("  %.2f Gbit/s (%.2f× raw TCP); relay %.0f%% of a core", r.dst.gbps(), r.dst.gbps()/s.r.tcpGbps, r.dst.use.pct(r.dst.use.relay))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// measureSCP copies a file from and to a real agent with stock OpenSSH scp,
// configured by `patchbay ssh-config` (ProxyCommand patchbay proxy %h).
func (s *sessionBench) measureSCP(ctx context.Context) error {
	if len(s.agents) == 0 {
		return errNoAgents
	}
	sc, err := newSCPSetup(ctx, s.o.cliBin, s.tech.configPath, filepath.Join(s.dir, "scp-source.bin"), int64(s.o.scpMiB)<<20)
	if err != nil {
		return err
	}
	defer sc.Close()
	host := s.agents[0].hostname + ".patchbay"
	var failed []string
	for _, r := range []struct {
		dst   *scpResult
		up    bool
		extra []string
	}{
		{&s.r.scpDown, false, nil},
		{&s.r.scpUp, true, nil},
		{&s.r.scpGCM, false, []string{"-c", gcmCipher}},
	} {
		if err := sc.best(ctx, host, r.up, r.extra, r.dst, s.usage); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// scpSetup is stock OpenSSH scp configured by `patchbay ssh-config` for one
// CLI config, and a sparse source file.
type scpSetup struct {
	scpBin, cfgPath, src string
	env                  []string
	size                 int64
}

// newSCPSetup writes the ssh_config that `patchbay ssh-config` prints for
// the CLI config configPath beside it, and a sparse source file of size
// bytes at src. Close removes the source file.
func newSCPSetup(ctx context.Context, cliBin, configPath, src string, size int64) (*scpSetup, error) {
	scpBin, err := exec.LookPath("scp")
	if err != nil {
		return nil, fmt.Errorf("OpenSSH scp: %w (install the Debian package openssh-client)", err)
	}
	env := append(os.Environ(), client.ConfigEnv+"="+configPath, "PATCHBAY_REASON=make bench: scp")
	gen := exec.CommandContext(ctx, cliBin, "ssh-config")
	gen.Env = env
	cfg, err := gen.Output()
	if err != nil {
		return nil, fmt.Errorf("patchbay ssh-config: %w", err)
	}
	cfgPath := filepath.Join(filepath.Dir(configPath), "ssh_config")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	if src, err = filepath.Abs(src); err != nil {
		return nil, err
	}
	if err := sparseFile(src, size); err != nil {
		return nil, err
	}
	return &scpSetup{scpBin: scpBin, cfgPath: cfgPath, src: src, env: env, size: size}, nil
}

// Close removes the source file.
func (sc *scpSetup) Close() { os.Remove(sc.src) }

// best copies the source file from host to /dev/null (or, up, to host's
// /dev/null) twice and keeps the faster run in dst, with the CPU that usage
// reads over it.
func (sc *scpSetup) best(ctx context.Context, host string, up bool, extra []string, dst *scpResult, usage func() cpuUse) error {
	rel := func(p string) string {
		if r, err := filepath.Rel(".", p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	args := append([]string{"-F", rel(sc.cfgPath)}, extra...)
	if up {
		args = append(args, rel(sc.src), host+":/dev/null")
	} else {
		args = append(args, host+":"+sc.src, "/dev/null")
	}
	dst.cmd = "PATCHBAY_REASON=... scp " + strings.Join(args, " ")
	step("sessions: %s", dst.cmd)
	for range 2 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd := exec.CommandContext(cctx, sc.scpBin, append([]string{"-v", "-o", "BatchMode=yes"}, args...)...)
		cmd.Env = sc.env
		killGroupOnCancel(cmd) // ssh and patchbay proxy too
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		u0 := usage()
		err := cmd.Run()
		u := usage().sub(u0)
		cancel()
		if err != nil {
			return fmt.Errorf("scp %s: %v: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
		}
		x := transfer{bytes: sc.size, elapsed: u.wall, use: u}
		if x.gbps() > dst.gbps() {
			dst.transfer, dst.cipher = x, sshCipher(stderr.String())
		}
	}
	step("  %.0f MB/s (cipher %s)", dst.mbps(), dst.cipher)
	return nil
}

// sparseFile makes path a file of size zero bytes without writing them.
func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sshCipher finds the negotiated cipher in `ssh -v` output.
func sshCipher(verbose string) string {
	sc := bufio.NewScanner(strings.NewReader(verbose))
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "kex: server->client cipher: "); ok {
			return strings.Fields(rest)[0]
		}
	}
	return "?"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// measureKeystrokes measures keystroke round trips with --keystroke-light
// sessions (for the latency without load; skipped when 0), then with
// --keystroke-sessions.
func (s *sessionBench) measureKeystrokes(ctx context.Context) error {
	if len(s.agents) == 0 {
		return errNoAgents
	}
	if l := s.o.keyLight; l > 0 && l < s.o.keySessions {
		s.r.keys = append(s.r.keys, s.keyRun(ctx, l, min(10*time.Second, s.o.keyWindow)))
	}
	s.r.keys = append(s.r.keys, s.keyRun(ctx, s.o.keySessions, s.o.keyWindow))
	return ctx.Err()
}

// keyRun opens k terminal sessions running cat in raw mode, spread over the
// agents, sends --keystroke-rate keys per second on each for window after a
// warm-up, measuring each key's echo at the technician, then disconnects
// every technician at once and waits for the relay to record the ends.
func (s *sessionBench) keyRun(ctx context.Context, k int, window time.Duration) keyResult {
	n := len(s.agents)
	step("sessions: keystrokes: opening %d terminal sessions over %d agents (one at a time on each agent)", k, n)
	typists := make([]*typist, k)
	var failures atomic.Int64
	var firstErr atomic.Value
	opened := time.Now()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := w; i < k && ctx.Err() == nil; i += n {
				ty, err := s.tech.openTypist(ctx, s.agents[w].id)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				typists[i] = ty
			}
		})
	}
	wg.Wait()
	defer closeAll(typists)
	kr := &keyResult{window: window}
	kr.sessions, kr.openTime = k, time.Since(opened)
	kr.openFailed = int(failures.Load())
	if e, ok := firstErr.Load().(string); ok {
		kr.firstErr = e
	}
	step("  %d open in %.1f s (%d failed)", k-kr.openFailed, kr.openTime.Seconds(), kr.openFailed)
	if ctx.Err() != nil {
		return *kr
	}

	every := time.Second / time.Duration(s.o.keyRate)
	start := time.Now().Add(100 * time.Millisecond)
	warm := start.Add(2 * time.Second)
	end := warm.Add(window)
	step("sessions: keystrokes: %d keys/s per session, %v warm-up, %v measured", s.o.keyRate, warm.Sub(start), window)
	kctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()
	samples := make([][]time.Duration, k)
	errs := make([]error, k)
	for i, ty := range typists {
		if ty == nil {
			continue
		}
		stop := context.AfterFunc(kctx, ty.Close)
		wg.Go(func() {
			defer stop()
			phase := time.Duration(rand.Int64N(int64(every)))
			samples[i], errs[i] = typeKeys(kctx, ty, start.Add(phase), warm, end, every)
		})
	}
	backoff.Sleep(ctx, time.Until(warm))
	u0 := s.usage()
	backoff.Sleep(ctx, time.Until(end))
	kr.use = s.usage().sub(u0)
	wg.Wait()
	for i, e := range errs {
		kr.rtts = append(kr.rtts, samples[i]...)
		if e != nil {
			kr.typeFailed++
			if kr.firstErr == "" {
				kr.firstErr = e.Error()
			}
		}
	}
	step("  %d keys: p50 %s, p99 %s; relay %.0f%% of a core, agents %.0f%%, load generator %.0f%%",
		len(kr.rtts), ms(pct(kr.rtts, 50)), ms(pct(kr.rtts, 99)), kr.use.pct(kr.use.relay), kr.use.pct(kr.use.agents), kr.use.pct(kr.use.loadgen))
	step("sessions: keystrokes: all %d technicians disconnect at once", k-kr.openFailed)
	left := time.Now()
	closeAll(typists)
	kr.endWait, kr.stillLive, kr.endErr = s.waitEnded(ctx, left, 60*time.Second)
	step("  %d sessions still live after %.1f s", kr.stillLive, kr.endWait.Seconds())
	return *kr
}

// waitEnded polls the relay until it records no session as requested or
// live, or limit passes, and returns how long after since that was and how
// many were still live then.
func (s *sessionBench) waitEnded(ctx context.Context, since time.Time, limit time.Duration) (time.Duration, int, string) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := s.tech.liveSessions(pctx)
		cancel()
		waited := time.Since(since)
		switch {
		case err != nil && ctx.Err() == nil:
			return waited, -1, err.Error()
		case ctx.Err() != nil:
			return waited, n, ctx.Err().Error()
		case n == 0 || waited >= limit:
			return waited, n, ""
		}
		backoff.Sleep(ctx, 500*time.Millisecond)
	}
}

// gcmCipher is the AES-GCM cipher of OpenSSH, for the scp comparison run.
const gcmCipher = "aes128-gcm@openssh.com"

// shellStart starts shell as a login shell on a terminal n times, without
// Patchbay, and returns the times to its first byte of output: the part of
// a session's setup that belongs to the endpoint's shell.
func shellStart(ctx context.Context, shell string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		d, err := shellFirstByte(shell)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func shellFirstByte(shell string) (time.Duration, error) {
	cmd := &exec.Cmd{Path: shell, Args: []string{"-" + filepath.Base(shell)}, Env: []string{
		"HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH"), "TERM=xterm", "SHELL=" + shell}}
	start := time.Now()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		return 0, fmt.Errorf("start %s on a terminal: %w", shell, err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tty.Close()
	}()
	_ = tty.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := tty.Read(b[:]); err != nil {
		return 0, fmt.Errorf("%s on a terminal: first byte: %w", shell, err)
	}
	return time.Since(start), nil
}

// typeKeys sends a key every interval from first until end on ty, and
// returns the round trips of the keys sent from warm on. A key that is due
// while the previous one is still out waits for it (no burst afterwards).
func typeKeys(ctx context.Context, ty *typist, first, warm, end time.Time, every time.Duration) ([]time.Duration, error) {
	var rtts []time.Duration
	next := first
	for i := 0; ; i++ {
		if !backoff.Sleep(ctx, time.Until(next)) {
			return rtts, ctx.Err()
		}
		if !next.Before(end) {
			return rtts, nil
		}
		rtt, err := ty.key(byte('a' + i%26))
		if err != nil {
			return rtts, err
		}
		if !next.Before(warm) {
			rtts = append(rtts, rtt)
		}
		next = next.Add(every)
		if now := time.Now(); now.After(next) {
			next = now
		}
	}
}

// closeAll closes the typists in parallel.
func closeAll(typists []*typist) {
	var wg sync.WaitGroup
	for _, ty := range typists {
		if ty != nil {
			wg.Go(ty.Close)
		}
	}
	wg.Wait()
}
