package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// slowHeartbeatFleet is a plugin fleet whose relay expects a ping only
// every 5 minutes: an agent stopped for a few seconds keeps its link, so that
// what ends it is the relay's writes, not a missed heartbeat.
func slowHeartbeatFleet(t *testing.T) *pluginFleet {
	t.Helper()
	r := &Relay{Dir: filepath.Join(t.TempDir(), "relay"), Addr: freePort(t), Heartbeat: "5m", t: t}
	r.URL = "https://" + r.Addr
	r.Start()
	r.FP = strings.TrimSpace(run(t, nil, bin("patchbay-server"), "fingerprint", "--data", r.Dir))
	cli := r.Login(r.AdminToken())
	good := newSigner(t, "secops@example.com")
	a := r.Enroll(cli.Token("--tags", "fleet=plugins"), "--trust", good.allowedSigners(t)).Start()
	waitFor(t, 10*time.Second, "agent online", func() bool { return cli.Online(a.ID) })
	return &pluginFleet{relay: r, cli: cli, good: good, agent: a}
}

// api calls the relay's REST API with an admin token, outside the CLI (a
// test that must create jobs quickly).
type api struct {
	t     *testing.T
	url   string
	token string
	hc    *http.Client
}

func newAPI(t *testing.T, r *Relay) *api {
	return &api{t: t, url: r.URL, token: r.AdminToken(), hc: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 8}}}
}

func (a *api) do(method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(method, a.url+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b.String())
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *api) createJob(req apiv1.JobCreate) (apiv1.Job, error) {
	var j apiv1.Job
	err := a.do(http.MethodPost, "/v1/jobs", req, &j)
	return j, err
}

func (a *api) job(id string) apiv1.Job {
	a.t.Helper()
	var j apiv1.Job
	if err := a.do(http.MethodGet, "/v1/jobs/"+id, nil, &j); err != nil {
		a.t.Fatal(err)
	}
	return j
}

// linkDropped reports whether the relay logged the end of the agent's link.
func linkDropped(r *Relay, agentID string) bool {
	for _, l := range strings.Split(r.Log().String(), "\n") {
		if strings.Contains(l, `"agent disconnected`) && strings.Contains(l, agentID) {
			return true
		}
	}
	return false
}

// One agent that stops reading its link (SIGSTOP: its TCP window fills)
// stalls nobody: a job over the other agents starts on all of them while
// the relay still waits on the stopped agent's writes, the stopped agent's
// link is dropped, and when it continues it reconnects and runs its part
// exactly once.
func TestStalledAgentBlocksNoOtherAgent(t *testing.T) {
	f := slowHeartbeatFleet(t)
	f.fleetOf(t, 4)
	others := map[string]bool{}
	for _, a := range f.cli.Agents("fleet=plugins") {
		if a.ID != f.agent.ID {
			others[a.ID] = true
		}
	}
	if len(others) != 4 {
		t.Fatalf("%d other agents, want 4", len(others))
	}
	f.cli.publish(t, f.good, bin("plugins/testplugin"))
	// Every agent has the plugin before the test proper.
	if j, err := f.cli.runJob(t, "testplugin", "--target", "fleet=plugins", "--param", "mode=clean"); err != nil || j.Counts["skipped"] != 5 {
		t.Fatalf("warm-up job: %v %v", err, j.Counts)
	}
	api := newAPI(t, f.relay)
	stalled := f.agent
	stalled.proc.signal(syscall.SIGSTOP)
	// Fill the stopped agent's TCP window and the relay's send buffer (a
	// few MB on loopback) with large run requests of jobs only it is in,
	// one job at a time, until what the relay wrote no longer grows: the
	// relay's next write to the agent waits.
	big := strings.Repeat("x", 8<<10)
	filler := apiv1.JobCreate{Plugin: "testplugin", Target: "id=" + stalled.ID, Reason: strings.Repeat("r", 1024),
		Params: map[string]string{"mode": "clean", "text": big, "pidfile": big, "countfile": big}}
	pid := stalled.proc.cmd.Process.Pid
	// What the relay wrote is what the agent's kernel holds plus what the
	// relay's kernel still queues, once the agent's kernel has acknowledged
	// what it holds (it is in both until then): read it when it is steady.
	// The kernel's queues announce nothing: they are polled, every 250 ms
	// (longer than a delayed ACK), for at most 30 s.
	written := func() int {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(30 * time.Second)
		last := -1
		for {
			rx, tx := tcpQueues(t, pid)
			if rx+tx == last {
				return last
			}
			last = rx + tx
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("the stopped agent's TCP queues did not settle in 30 s (%d bytes)", last)
			}
		}
	}
	// A megabyte and a half at once: far less than the link holds.
	for range 60 {
		if _, err := api.createJob(filler); err != nil {
			t.Fatalf("filler job: %v", err)
		}
	}
	for n := 60; ; n++ {
		if n == 400 {
			t.Fatal("400 run requests of 25 KB did not fill the stopped agent's link")
		}
		before := written()
		if _, err := api.createJob(filler); err != nil {
			t.Fatalf("filler job: %v", err)
		}
		grew := false
		// The relay writes a run within milliseconds of its job; a second
		// without growth means its write waits (a write waits at most
		// the link's write timeout, 5 s, before the link is dropped).
		tick := time.NewTicker(20 * time.Millisecond)
		second := time.After(time.Second)
	poll:
		for {
			rx, tx := tcpQueues(t, pid)
			if grew = rx+tx >= before+20<<10; grew {
				break
			}
			select {
			case <-tick.C:
			case <-second:
				break poll
			}
		}
		tick.Stop()
		if !grew {
			t.Logf("the stopped agent's link is full after %d jobs (%d bytes queued)", n+1, before)
			break
		}
	}
	if linkDropped(f.relay, stalled.ID) {
		t.Fatal("the stopped agent's link ended before the job over the others was created: the test proves nothing")
	}

	count := filepath.Join(t.TempDir(), "count")
	j, err := api.createJob(apiv1.JobCreate{Plugin: "testplugin", Target: "fleet=plugins", Params: map[string]string{"countfile": count}})
	if err != nil {
		t.Fatal(err)
	}
	// Every other agent starts its run before the relay gives up on the
	// stopped one: the job's sends did not wait for it.
	waitFor(t, 60*time.Second, "the other agents' runs to start", func() bool {
		job := api.job(j.ID) // first the job, then the log: a start seen here happened before a drop not logged yet
		started := 0
		for _, r := range job.Results {
			if others[r.AgentID] && r.State != "pending" {
				started++
			}
		}
		if started == len(others) {
			if linkDropped(f.relay, stalled.ID) {
				t.Fatal("the other agents' runs started only after the stopped agent's link was dropped: one agent stalled the job")
			}
			return true
		}
		if linkDropped(f.relay, stalled.ID) {
			t.Fatalf("the stopped agent's link was dropped before the other agents' runs started (%d of %d): one agent stalled the job", started, len(others))
		}
		return false
	})
	waitFor(t, 60*time.Second, "the other agents' runs to succeed", func() bool {
		return api.job(j.ID).Counts["succeeded"] == len(others)
	})
	waitFor(t, 60*time.Second, "the relay to drop the stopped agent's link", func() bool { return linkDropped(f.relay, stalled.ID) })

	stalled.proc.signal(syscall.SIGCONT)
	waitFor(t, 180*time.Second, "the job to end", func() bool { return api.job(j.ID).EndedAt != nil })
	job := api.job(j.ID)
	if job.Counts["succeeded"] != 5 {
		t.Fatalf("counts = %v", job.Counts)
	}
	if n := lines(t, count); n != 5 {
		t.Fatalf("the fix ran %d times on 5 agents, want 5", n)
	}
}

// tcpQueues returns the bytes queued on the agent process's TCP
// connections: received and not yet read by the agent (rx), and, on the
// far ends of those connections (the relay's side, on this machine),
// written and not yet taken by the agent (tx). Linux: /proc/PID/fd and
// /proc/net/tcp.
func tcpQueues(t *testing.T, pid int) (rx, tx int) {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("list the agent's sockets: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	type row struct{ local, remote, queues, inode string }
	var rows []row
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) >= 10 {
				rows = append(rows, row{fs[1], fs[2], fs[4], fs[9]})
			}
		}
	}
	queue := func(q string, second bool) int {
		a, b, _ := strings.Cut(q, ":")
		if second {
			a = b
		}
		n, _ := strconv.ParseInt(a, 16, 64)
		return int(n)
	}
	ours := map[string]bool{} // local addresses of the agent's sockets
	for _, r := range rows {
		if inodes[r.inode] {
			ours[r.local] = true
			rx += queue(r.queues, true)
		}
	}
	for _, r := range rows {
		if !inodes[r.inode] && ours[r.remote] {
			tx += queue(r.queues, false)
		}
	}
	return rx, tx
}

// A relay lost while an agent downloads the plugin of a run fails nothing:
// the agent, stopped, is sent the run; the relay is killed; the agent
// continues and cannot download the plugin; nothing ran, so the run is not
// final; when the relay is back the run is sent again and succeeds, once.
func TestRelayLostMidDownloadFailsNothing(t *testing.T) {
	f := slowHeartbeatFleet(t)
	f.cli.publish(t, f.good, bin("plugins/testplugin"))
	count := filepath.Join(t.TempDir(), "count")
	pid := f.agent.proc.cmd.Process.Pid
	before, _ := tcpQueues(t, pid)
	f.agent.proc.signal(syscall.SIGSTOP)
	id := f.cli.startJob(t, "testplugin", "--target", "id="+f.agent.ID, "--param", "countfile="+count)
	waitFor(t, 30*time.Second, "the run request to reach the stopped agent's socket", func() bool {
		rx, _ := tcpQueues(t, pid)
		return rx > before+200
	})
	f.relay.proc.kill()
	f.agent.proc.signal(syscall.SIGCONT)
	waitFor(t, 30*time.Second, "the agent to give up on the download", func() bool {
		return f.agent.proc.log.Count(`"run ended"`) == 1
	})
	if !strings.Contains(f.agent.proc.log.String(), "download plugin") {
		t.Fatalf("the run ended without a failed download:\n%s", tail(f.agent.proc.log.String(), 4096))
	}
	f.relay.Start()
	waitFor(t, 60*time.Second, "the job to end", func() bool { return f.cli.job(t, id).Final() })
	r := onlyResult(t, f.cli.job(t, id))
	if r.State != "succeeded" {
		t.Fatalf("result after the relay came back: %+v", r)
	}
	if n := lines(t, count); n != 1 {
		t.Fatalf("the fix ran %d times, want 1", n)
	}
}
