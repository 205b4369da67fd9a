package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads url (with a bearer token when token is set) and parses it
// with Prometheus' text parser; it returns the status when not 200.
func scrape(t *testing.T, url, token string) (map[string]*dto.MetricFamily, int) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: the Prometheus text parser refuses the answer: %v", url, err)
	}
	return fams, 200
}

// value returns the sum of the samples of family name whose labels include
// want (name=value pairs), counters, gauges and histogram counts alike.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// /metrics parses with Prometheus' text parser and its counters move as an
// agent connects, a job runs and the agent leaves; the main listener serves
// it to admins only, --metrics-listen to anyone who reaches it.
func TestMetricsMoveWithAgentsAndJobs(t *testing.T) {
	maddr := freePort(t)
	open := "http://" + maddr + "/metrics"
	r := StartRelayArgs(t, "--metrics-listen", maddr)
	admin := r.AdminToken()
	cli := r.Login(admin)

	before, code := scrape(t, open, "")
	if code != 200 {
		t.Fatalf("GET %s: status %d, want 200", open, code)
	}
	for _, name := range []string{"patchbay_agents_online", "patchbay_agent_links_opened_total", "patchbay_store_tx_seconds",
		"patchbay_jobs_active", "patchbay_consent_decisions_total", "go_goroutines", "process_resident_memory_bytes"} {
		if before[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	checkDashboard(t, before)
	if v := value(before, "patchbay_agents_online"); v != 0 {
		t.Fatalf("agents online before any agent: %v", v)
	}

	// The main listener: no token, a viewer's, an admin's.
	main := r.URL + "/metrics"
	if _, code := scrape(t, main, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: status %d, want 401", code)
	}
	viewer := strings.TrimSpace(strings.SplitN(cli.Run("api-tokens", "create", "--role", "viewer", "--name", "grafana"), "\n", 2)[0])
	if _, code := scrape(t, main, viewer); code != http.StatusForbidden {
		t.Errorf("GET /metrics with a viewer token: status %d, want 403", code)
	}
	if _, code := scrape(t, main, admin); code != 200 {
		t.Fatalf("GET /metrics with an admin token: status %d, want 200", code)
	}

	// An agent connects.
	good := newSigner(t, "secops@example.com")
	a := r.Enroll(cli.Token("--tags", "fleet=metrics"), "--trust", good.allowedSigners(t)).Start()
	waitFor(t, 20*time.Second, "agents_online to reach 1", func() bool {
		m, _ := scrape(t, open, "")
		return value(m, "patchbay_agents_online") == 1 && value(m, "patchbay_agent_links_opened_total") == 1
	})

	// A job runs.
	cli.publish(t, good, bin("plugins/testplugin"))
	j, err := cli.runJob(t, "testplugin", "--target", "id="+a.ID, "--param", "mode=echo", "--param", "text=metrics")
	if err != nil || onlyResult(t, j).State != "succeeded" {
		t.Fatalf("job: %v %+v", err, j)
	}
	after, _ := scrape(t, main, admin)
	if v := value(after, "patchbay_jobs_created_total"); v != 1 {
		t.Errorf("jobs_created_total = %v, want 1", v)
	}
	if v := value(after, "patchbay_runs_finished_total", "state", "succeeded"); v != 1 {
		t.Errorf("runs_finished_total{state=succeeded} = %v, want 1", v)
	}
	if b, a := value(before, "patchbay_store_tx_seconds"), value(after, "patchbay_store_tx_seconds"); a <= b {
		t.Errorf("store_tx_seconds count did not move: %v -> %v", b, a)
	}
	waitFor(t, 10*time.Second, "jobs_active to return to 0", func() bool {
		m, _ := scrape(t, open, "")
		return value(m, "patchbay_jobs_active") == 0
	})

	// The agent leaves.
	a.proc.stop(t)
	var dropped map[string]*dto.MetricFamily
	waitFor(t, 20*time.Second, "the link to be counted as dropped", func() bool {
		dropped, _ = scrape(t, open, "")
		return value(dropped, "patchbay_agents_online") == 0 && value(dropped, "patchbay_agent_links_dropped_total") == 1
	})
	var reasons []string
	for _, m := range dropped["patchbay_agent_links_dropped_total"].GetMetric() {
		if m.GetCounter().GetValue() > 0 {
			reasons = append(reasons, fmt.Sprint(m.GetLabel()[0].GetValue()))
		}
	}
	t.Logf("link dropped with reason %v", reasons)
}

// checkDashboard checks that every metric the sample Grafana dashboard
// queries is one the relay serves.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/patchbay.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:patchbay|go|process)_[a-z_]+`).FindAllString(string(b), -1)
	if len(names) == 0 {
		t.Fatal("deploy/grafana/patchbay.json queries no metric")
	}
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if fams[base] == nil {
				base = strings.TrimSuffix(base, suf)
			}
		}
		if fams[base] == nil {
			t.Errorf("deploy/grafana/patchbay.json queries %s, which /metrics does not serve", n)
		}
	}
}

// In a tier (PostgreSQL and NATS), publishes on the bus are timed: revoking
// an agent publishes the revocation to every relay.
func TestMetricsTierBusPublish(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	a := base.a
	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", base.db))
	admin := a.Login(token)
	before, code := scrape(t, a.URL+"/metrics", token)
	if code != 200 {
		t.Fatalf("GET /metrics with an admin token on a tier relay: status %d", code)
	}
	ag := a.Enroll(admin.Token())
	admin.Run("agents", "revoke", ag.ID)
	after, _ := scrape(t, a.URL+"/metrics", token)
	if b, n := value(before, "patchbay_bus_publish_seconds"), value(after, "patchbay_bus_publish_seconds"); n <= b {
		t.Errorf("bus_publish_seconds count did not move with a revocation: %v -> %v", b, n)
	}
	if v := value(after, "patchbay_store_tx_seconds"); v <= 0 {
		t.Errorf("store_tx_seconds count on PostgreSQL is %v", v)
	}
}
