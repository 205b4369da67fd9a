// Package metrics is the relay's Prometheus instrumentation: the one place
// that imports the Prometheus client. The parts of the relay that count
// (agent links, the job dispatcher, the session broker, the store and the
// bus) see only small interfaces of their own, which *Metrics implements;
// the store is timed through a hook (store.Store.ObserveTx), so that it does
// not depend on Prometheus either.
//
// Every metric is about this relay process: in a tier of relays, sum over
// the relays (an agent is linked to one relay; a job is scheduled by the one
// that holds its lease; a session is bridged by the relay of its agent).
//
// Metric names (all prefixed patchbay_):
//
//	agents_online                      gauge    agents linked to this relay now
//	agent_links_opened_total           counter  agent links greeted
//	agent_links_dropped_total{reason}  counter  agent links ended: agent_closed, timeout, protocol, relay_stopping, error
//	runs_finished_total{state}         counter  runs that reached a final state (succeeded, failed, expired, ...)
//	jobs_created_total                 counter  jobs created through this relay
//	jobs_active                        gauge    open jobs this relay schedules
//	sessions_opened_total{kind}        counter  approved sessions bridged (kind: desktop, shell, sftp, forward, exec)
//	sessions_active{kind}              gauge    sessions being bridged now
//	consent_decisions_total{kind,decision}  counter  kind session or fix; decision approved, denied or timeout
//	store_tx_seconds                   histogram  store transactions, begin to commit or rollback
//	bus_publish_seconds                histogram  NATS publishes (only with --nats)
//
// plus the Go runtime (go_*) and process (process_*) collectors.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the relay's metrics in a registry of its own (not the
// global one): two relays in one test process do not collide.
type Metrics struct {
	reg *prometheus.Registry

	linksOpened    prometheus.Counter
	linksDropped   *prometheus.CounterVec
	runsFinished   *prometheus.CounterVec
	jobsCreated    prometheus.Counter
	sessionsOpened *prometheus.CounterVec
	sessionsActive *prometheus.GaugeVec
	consent        *prometheus.CounterVec
	storeTx        prometheus.Histogram
	busPublish     prometheus.Histogram
	gauges         atomic.Pointer[Gauges]
}

// Gauges are read when Prometheus scrapes: the functions that report them.
// Either may be nil (the gauge reads 0).
type Gauges struct {
	AgentsOnline func() int
	JobsActive   func() int
}

const namespace = "patchbay"

// Link drop reasons (LinkDropped).
const (
	DropAgentClosed   = "agent_closed"
	DropTimeout       = "timeout"
	DropProtocol      = "protocol"
	DropRelayStopping = "relay_stopping"
	DropError         = "error"
)

// Consent decisions and kinds (ConsentDecision).
const (
	DecisionApproved = "approved"
	DecisionDenied   = "denied"
	DecisionTimeout  = "timeout"
	ConsentSession   = "session"
	ConsentFix       = "fix"
)

// latencyBuckets span a fast SQLite commit (~50 µs) to a stuck one (busy
// timeout 5 s).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the relay's metrics. The gauges read 0 until SetGauges.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.linksOpened = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "agent_links_opened_total",
		Help: "Agent links greeted by this relay."})
	m.linksDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "agent_links_dropped_total",
		Help: "Agent links that ended, by reason: agent_closed, timeout (silent for 3 heartbeats), protocol (the agent broke it), relay_stopping, error."},
		[]string{"reason"})
	m.runsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "runs_finished_total",
		Help: "Runs (one job on one agent) that reached a final state, by state, in jobs this relay schedules."}, []string{"state"})
	m.jobsCreated = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "jobs_created_total",
		Help: "Jobs created through this relay's API."})
	m.sessionsOpened = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "sessions_opened_total",
		Help: "Interactive sessions approved and bridged by this relay, by kind (desktop, shell, sftp, forward, exec)."}, []string{"kind"})
	m.sessionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "sessions_active",
		Help: "Interactive sessions being bridged by this relay now, by kind."}, []string{"kind"})
	m.consent = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "consent_decisions_total",
		Help: "Consent decisions reported by endpoints, by kind (session, fix) and decision (approved, denied, timeout)."},
		[]string{"kind", "decision"})
	m.storeTx = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "store_tx_seconds",
		Help: "Store (database) transactions, from begin to commit or rollback.", Buckets: latencyBuckets})
	m.busPublish = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "bus_publish_seconds",
		Help:    "Publishes on the NATS bus of a tier, until the server has the message (relays alone publish in-process and are not measured).",
		Buckets: latencyBuckets})
	agents := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "agents_online",
		Help: "Agents linked to this relay now."}, func() float64 { return m.gauge(func(g *Gauges) func() int { return g.AgentsOnline }) })
	jobs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "jobs_active",
		Help: "Open jobs this relay schedules now."}, func() float64 { return m.gauge(func(g *Gauges) func() int { return g.JobsActive }) })
	m.reg.MustRegister(m.linksOpened, m.linksDropped, m.runsFinished, m.jobsCreated, m.sessionsOpened, m.sessionsActive,
		m.consent, m.storeTx, m.busPublish, agents, jobs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Series with known labels start at 0, so that rate() sees their first
	// increase and dashboards find them before the first event (the run
	// states are store.Run*, the kinds those of sessions.sessionKind).
	for _, r := range []string{DropAgentClosed, DropTimeout, DropProtocol, DropRelayStopping, DropError} {
		m.linksDropped.WithLabelValues(r)
	}
	for _, st := range []string{"succeeded", "failed", "skipped", "cancelled", "halted", "expired"} {
		m.runsFinished.WithLabelValues(st)
	}
	for _, k := range []string{"desktop", "shell", "sftp", "forward", "exec"} {
		m.sessionsOpened.WithLabelValues(k)
		m.sessionsActive.WithLabelValues(k)
	}
	for _, k := range []string{ConsentSession, ConsentFix} {
		for _, d := range []string{DecisionApproved, DecisionDenied, DecisionTimeout} {
			m.consent.WithLabelValues(k, d)
		}
	}
	return m
}

// SetGauges sets the functions that report the gauges (once the parts
// they read exist).
func (m *Metrics) SetGauges(g Gauges) { m.gauges.Store(&g) }

func (m *Metrics) gauge(pick func(*Gauges) func() int) float64 {
	g := m.gauges.Load()
	if g == nil {
		return 0
	}
	if f := pick(g); f != nil {
		return float64(f())
	}
	return 0
}

// Handler serves the metrics in Prometheus' text format (or OpenMetrics
// when asked for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// LinkOpened counts an agent link greeted.
func (m *Metrics) LinkOpened() { m.linksOpened.Inc() }

// LinkDropped counts an agent link that ended, for reason (Drop*).
func (m *Metrics) LinkDropped(reason string) { m.linksDropped.WithLabelValues(reason).Inc() }

// RunsFinished counts n runs that reached the final state.
func (m *Metrics) RunsFinished(state string, n int) {
	if n > 0 {
		m.runsFinished.WithLabelValues(state).Add(float64(n))
	}
}

// JobCreated counts a job created.
func (m *Metrics) JobCreated() { m.jobsCreated.Inc() }

// SessionOpened counts a session of kind being bridged; call the returned
// function once when it ends.
func (m *Metrics) SessionOpened(kind string) (ended func()) {
	m.sessionsOpened.WithLabelValues(kind).Inc()
	g := m.sessionsActive.WithLabelValues(kind)
	g.Inc()
	return g.Dec
}

// ConsentDecision counts a decision (Decision*) of kind (ConsentSession,
// ConsentFix).
func (m *Metrics) ConsentDecision(kind, decision string) {
	m.consent.WithLabelValues(kind, decision).Inc()
}

// StoreTx observes one store transaction's duration.
func (m *Metrics) StoreTx(d time.Duration) { m.storeTx.Observe(d.Seconds()) }

// BusPublish observes one bus publish's duration.
func (m *Metrics) BusPublish(d time.Duration) { m.busPublish.Observe(d.Seconds()) }
