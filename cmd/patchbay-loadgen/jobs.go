package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/backoff"
	"github.com/patchbay/patchbay/plugins/signature"
)

// jobRun is one measured job: dispatch to every target agent and every
// result stored.
type jobRun struct {
	elapsed          time.Duration // job created -> every result stored (job ended)
	relayCPU         time.Duration // relay utime+stime over the same span
	idleRSS, peakRSS int64         // KiB, before and the highest sampled during the job
	ok               bool          // every agent succeeded
}

// jobResult is the jobs measured on one target: the first after the agents
// connected (the relay's caches and the links' goroutine stacks still cold)
// and then warm ones, which the figures are the median of.
type jobResult struct {
	target string
	agents int
	first  jobRun
	warm   []jobRun
}

// warmJobs is how many warm jobs run on a target of agents.
func warmJobs(agents int) int {
	if agents > 10500 {
		return 3
	}
	return 5
}

// median returns the warm runs' median time and median relay CPU (each on
// its own), whether all of them succeeded, and the highest peak RSS of all
// runs with the idle RSS before the first.
func (j jobResult) median() (elapsed, cpu time.Duration, ok bool, idleRSS, peakRSS int64) {
	runs := j.warm
	if len(runs) == 0 {
		runs = []jobRun{j.first}
	}
	var els, cpus []time.Duration
	ok, idleRSS, peakRSS = true, j.first.idleRSS, j.first.peakRSS
	for _, r := range runs {
		els, cpus = append(els, r.elapsed), append(cpus, r.relayCPU)
		ok = ok && r.ok
		peakRSS = max(peakRSS, r.peakRSS)
	}
	return pct(els, 50), pct(cpus, 50), ok, idleRSS, peakRSS
}

// measureJobs runs no-op jobs (the load generator's agents answer every run
// at once) on 10,000 agents and then on all of them: on each target a first
// job and then warmJobs more.
func (b *bench) measureJobs(ctx context.Context) error {
	cl, err := adminClient(ctx, b.o.serverBin, b.dataDir, b.server, b.fp, "loadgen-jobs", "1h")
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := publishBenchPlugin(ctx, cl, filepath.Join(filepath.Dir(b.o.serverBin), "plugins", "sysinfo")); err != nil {
		return fmt.Errorf("publish the bench plugin: %w", err)
	}
	// Targets that select only agents this run started (hostnames
	// loadgen-00000 upwards); the relay's data may hold more.
	var targets []string
	switch {
	case b.o.agents >= 19000:
		targets = []string{"hostname=loadgen-0*", "hostname=loadgen-*"}
	case b.o.agents >= 10000:
		targets = []string{"hostname=loadgen-0*"}
	case b.o.agents >= 1000:
		targets = []string{"hostname=loadgen-00*"}
	default:
		return fmt.Errorf("the job measurement needs at least 1,000 agents")
	}
	for _, target := range targets {
		var res jobResult
		for i := 0; i == 0 || i <= warmJobs(res.agents); i++ {
			run, n, err := b.measureJob(ctx, cl, target)
			if err != nil {
				return err
			}
			res.target, res.agents = target, n
			what := "first job"
			if i == 0 {
				res.first = run
			} else {
				res.warm = append(res.warm, run)
				what = fmt.Sprintf("warm job %d", i)
			}
			step("  %s on %d agents (%s): %v, relay CPU %.1f µs per agent, RSS %s -> peak %s", what,
				n, target, run.elapsed.Round(time.Millisecond),
				float64(run.relayCPU.Microseconds())/float64(max(n, 1)), kib(run.idleRSS), kib(run.peakRSS))
			backoff.Sleep(ctx, 2*time.Second)
		}
		b.r.jobs = append(b.r.jobs, res)
	}
	return nil
}

// measureJob runs one no-op job on target and returns its figures and the
// number of agents it targeted.
func (b *bench) measureJob(ctx context.Context, cl *client.Client, target string) (jobRun, int, error) {
	pid := b.relay.pid()
	var res jobRun
	res.idleRSS, _ = procStatus(pid, "VmRSS")
	res.peakRSS = res.idleRSS
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, 0, err
	}
	start := time.Now()
	j, err := cl.CreateJob(ctx, apiv1.JobCreate{Plugin: "sysinfo", Target: target, Reason: "make bench", Expires: "3m"})
	if err != nil {
		return res, 0, err
	}
	deadline := start.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if rss, err := procStatus(pid, "VmRSS"); err == nil && rss > res.peakRSS {
			res.peakRSS = rss
		}
		p, err := cl.JobProgress(ctx, j.ID)
		if err != nil {
			return res, j.Total, err
		}
		if p.EndedAt != nil {
			res.elapsed = p.EndedAt.Sub(p.CreatedAt)
			res.ok = p.Counts["succeeded"] == j.Total
			break
		}
		time.Sleep(50 * time.Millisecond) // the polling costs the relay CPU too: keep it light
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, j.Total, err
	}
	res.relayCPU = cpu1 - cpu0
	if res.elapsed == 0 {
		return res, j.Total, fmt.Errorf("job on %q did not end within 2 minutes", target)
	}
	return res, j.Total, nil
}

// publishBenchPlugin signs the plugin at path with a throwaway key and
// publishes it (the simulated agents never run it; real ones would refuse
// the key).
func publishBenchPlugin(ctx context.Context, cl *client.Client, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return err
	}
	sig, err := signature.Sign(signer, bytes.NewReader(data))
	if err != nil {
		return err
	}
	manifest, err := exec.CommandContext(ctx, path, "manifest").Output()
	if err != nil {
		return fmt.Errorf("%s manifest: %w", path, err)
	}
	_, _, err = cl.PublishPlugin(ctx, client.Upload{File: bytes.NewReader(data), FileName: filepath.Base(path), Signature: sig, Manifest: manifest})
	return err
}
