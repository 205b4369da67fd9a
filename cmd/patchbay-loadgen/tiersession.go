package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// The tier session part of the bench (issue 14, "Performance": session
// throughput technician-on-B to agent-on-A), --only tiersession:
//
//  1. a PostgreSQL started for the run and two relays on it, A (embedded
//     NATS) and B, as the tier part starts them;
//  2. one real patchbay-agent enrolled through A and connected to A only;
//  3. two technicians with the same API token, one logged in on A, one on
//     B; stock OpenSSH scp configured by `patchbay ssh-config` for each;
//  4. scp of --scp-mib MiB from the agent, then to it, best of 4 (two
//     rounds of two copies, alternating), through A (same relay) and B (B forwards the session to A
//     over the tier's direct TLS connection, server/tierforward.go), with
//     the CPU of A, of B and of the agent over each copy.

// tierSessionResults is everything the tier session part measured.
type tierSessionResults struct {
	started               time.Time
	opts                  benchOptions
	machine               machineInfo
	cmd, pg               string
	loadBefore, loadAfter string

	// same relay: the technician on A; forwarded: the technician on B.
	sameDown, sameUp, fwdDown, fwdUp scpResult

	notes []string
	logs  []logSummary
}

func (r *tierSessionResults) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// runTierSessionOnly runs the tier session part and rewrites its section of
// --out.
func runTierSessionOnly(ctx context.Context, o benchOptions, logDir string) error {
	for _, bin := range []string{o.serverBin, o.agentBin, o.cliBin} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("tiersession: %w (run make build)", err)
		}
	}
	r := &tierSessionResults{started: time.Now().UTC(), opts: o, machine: machine()}
	t := &tierBench{o: o, r: &tierResults{}, dir: filepath.Join(o.cacheDir, "tiersession"), logDir: filepath.Join(logDir, "tiersession")}
	defer t.cleanup()
	r.loadBefore = loadAvg()
	if err := runTierSession(ctx, t, r); err != nil {
		return fmt.Errorf("tiersession: %w", err)
	}
	r.loadAfter = loadAvg()
	t.cleanup()
	ents, _ := os.ReadDir(t.logDir)
	for _, e := range ents {
		warn, errs, emfile, sample := scanLog(filepath.Join(t.logDir, e.Name()))
		r.logs = append(r.logs, logSummary{name: "tiersession/" + e.Name(), warn: warn, errors: errs, emfile: emfile, sample: sample})
	}
	r.cmd = commandLine()
	if err := writeTierSessionOnly(o.out, r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	step("tier session section written to %s", o.out)
	printTierSessionSummary(r)
	return nil
}

// runTierSession sets the tier, the agent and the technicians up and runs
// the copies.
func runTierSession(ctx context.Context, t *tierBench, r *tierSessionResults) error {
	o := t.o
	for _, d := range []string{t.dir, t.logDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := t.startPostgres(ctx); err != nil {
		return err
	}
	r.pg = t.r.pg
	if err := t.planRelays(ctx, 2); err != nil {
		return err
	}
	a, b := t.relays[0], t.relays[1]
	for _, rl := range t.relays {
		step("tiersession: relay %s on %s", rl.name, rl.listen)
		if err := t.startRelay(ctx, rl); err != nil {
			return err
		}
	}

	admin, err := t.client(ctx, a)
	if err != nil {
		return fmt.Errorf("admin login on A: %w", err)
	}
	defer admin.Close()
	tok, err := admin.CreateAPIToken(ctx, apiv1.APITokenRequest{Role: apiv1.RoleTechnician, Name: technicianName, TTL: "2h"})
	if err != nil {
		return err
	}
	one := 1
	etok, err := admin.CreateEnrollToken(ctx, apiv1.EnrollTokenRequest{Uses: &one, TTL: "1h", Tags: map[string]string{"loadgen": "tiersession"}})
	if err != nil {
		return err
	}
	approve, err := writeApproveScript(t.dir)
	if err != nil {
		return err
	}

	// The agent, enrolled through A and given only A's address.
	dir, host := filepath.Join(t.dir, "agent"), "bench-tier-sess"
	out, err := exec.CommandContext(ctx, o.agentBin, "enroll", "--server", a.server, "--token", etok.Token,
		"--ca-fingerprint", t.fp, "--data", dir, "--hostname", host).CombinedOutput()
	if err != nil {
		return fmt.Errorf("patchbay-agent enroll %s: %w: %s", host, err, clipText(strings.TrimSpace(string(out)), 300))
	}
	id, err := identity.Load(dir)
	if err != nil {
		return err
	}
	args := []string{"run", "--data", dir, "--log-level", "warn", "--log-format", "json",
		"--consent-mode", "prompt", "--consent-backend", "exec:" + approve, "--consent-timeout", "30s"}
	if o.sessionShell != "" {
		args = append(args, "--session-shell", o.sessionShell)
	}
	c, err := startChild("agent "+host, o.agentBin, args, filepath.Join(t.logDir, "agent.log"), syscall.SIGTERM, nil)
	if err != nil {
		return err
	}
	agent := &realAgent{child: c, id: id.AgentID, hostname: host, dir: dir}
	defer func() {
		if agent.alive() && !agent.stop(10*time.Second) {
			r.note("The agent did not stop within 10 s of SIGTERM and was killed.")
		}
	}()
	if _, err := t.waitSum(ctx, []*tierRelay{a}, 1, 30*time.Second, nil); err != nil {
		return fmt.Errorf("agent on relay A: %w", err)
	}
	if n, err := b.h.online(ctx); err == nil && n != 0 {
		return fmt.Errorf("relay B holds %d agents; the agent must be on A only", n)
	}

	// The technicians, on A and on B, and the scp set-ups of each.
	type side struct {
		name       string
		tech       *technician
		sc         *scpSetup
		down, up   *scpResult
		techServer string
	}
	sides := []*side{{name: "A", techServer: a.server, down: &r.sameDown, up: &r.sameUp},
		{name: "B", techServer: b.server, down: &r.fwdDown, up: &r.fwdUp}}
	size := int64(o.scpMiB) << 20
	for _, s := range sides {
		tdir := filepath.Join(t.dir, "technician-"+s.name)
		if err := os.MkdirAll(tdir, 0o700); err != nil {
			return err
		}
		if s.tech, err = newTechnician(ctx, s.techServer, tok.Token, t.fp, tdir); err != nil {
			return fmt.Errorf("technician on relay %s: %w", s.name, err)
		}
		defer s.tech.Close()
		if err := warmSession(ctx, s.tech, agent); err != nil {
			return fmt.Errorf("technician on relay %s: %w", s.name, err)
		}
		if s.sc, err = newSCPSetup(ctx, o.cliBin, s.tech.configPath, filepath.Join(t.dir, "scp-source-"+s.name+".bin"), size); err != nil {
			return fmt.Errorf("technician on relay %s: %w", s.name, err)
		}
		defer s.sc.Close()
	}
	usage := func() cpuUse {
		var u cpuUse
		u.relay, _ = procCPU(a.c.pid())
		u.peer, _ = procCPU(b.c.pid())
		u.agents, _ = procCPU(agent.pid())
		u.loadgen, _ = procCPU(os.Getpid())
		u.machine = machineBusy()
		u.at = time.Now()
		return u
	}
	// Rounds of each direction through A, then through B, so both see the
	// same load; best keeps the fastest copy of all rounds.
	for round := range tierSessionRounds {
		for _, up := range []bool{false, true} {
			for _, s := range sides {
				dst := s.down
				if up {
					dst = s.up
				}
				step("tiersession: round %d of %d, technician on relay %s", round+1, tierSessionRounds, s.name)
				if err := s.sc.best(ctx, host+".patchbay", up, nil, dst, usage); err != nil {
					r.note("The scp %s the agent with the technician on relay %s failed: %v.", map[bool]string{false: "from", true: "to"}[up], s.name, err)
					step("  failed: %v", err)
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tierSessionRounds is how many times each copy runs twice, alternating
// between the technician on A and on B.
const tierSessionRounds = 2
