package jobs

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runner's Prometheus collectors. Gauges of queued and dead
// jobs describe the whole database (every runner exports the same value);
// jobs_running and the counters describe this runner only.
type metrics struct {
	queued     *prometheus.GaugeVec
	dead       *prometheus.GaugeVec
	running    *prometheus.GaugeVec
	done       *prometheus.CounterVec
	retried    *prometheus.CounterVec
	deadTotal  *prometheus.CounterVec
	leaseLost  *prometheus.CounterVec
	durationS  *prometheus.HistogramVec
	mu         sync.Mutex
	knownKinds map[string]bool // kinds whose database gauges were set, so they can be zeroed
}

func newMetrics(reg prometheus.Registerer) *metrics {
	kind := []string{"kind"}
	m := &metrics{
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobs_queued", Help: "Jobs waiting in the queue (due or scheduled), by kind, in the whole database; refreshed periodically.",
		}, kind),
		dead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobs_dead", Help: "Jobs in the dead-letter state, by kind, in the whole database; refreshed periodically.",
		}, kind),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobs_running", Help: "Handlers running now in this process, by kind.",
		}, kind),
		done: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_done_total", Help: "Jobs this process completed successfully, by kind.",
		}, kind),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_retried_total", Help: "Failed attempts in this process that were scheduled for another attempt, by kind.",
		}, kind),
		deadTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_dead_total", Help: "Jobs this process moved to the dead-letter state, by kind.",
		}, kind),
		leaseLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobs_lease_lost_total", Help: "Runs of this process whose lease had passed to another run before they finished, by kind.",
		}, kind),
		durationS: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "job_duration_seconds",
			Help:    "Wall-clock duration of handler runs in this process, by kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, kind),
		knownKinds: map[string]bool{},
	}
	if reg == nil {
		return m
	}
	m.queued = register(reg, m.queued)
	m.dead = register(reg, m.dead)
	m.running = register(reg, m.running)
	m.done = register(reg, m.done)
	m.retried = register(reg, m.retried)
	m.deadTotal = register(reg, m.deadTotal)
	m.leaseLost = register(reg, m.leaseLost)
	m.durationS = register(reg, m.durationS)
	return m
}

// register registers c, or returns the collector already registered under
// its name, so that several runners in one process share their metrics. It
// panics on any other registration error, which is a programming mistake.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("jobs: register metrics: " + err.Error())
	}
	return c
}
