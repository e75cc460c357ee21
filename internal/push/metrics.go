package push

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opencashier/cashier/internal/errs"
)

type metrics struct {
	transitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cashier_push_transitions_total",
		Help: "Balance-push state transitions, by from and to state.",
	}, []string{"from", "to"})}
	if reg != nil {
		if err := reg.Register(m.transitions); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				m.transitions = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return m
}

func (m *metrics) transition(from, to State) {
	m.transitions.WithLabelValues(string(from), string(to)).Inc()
}

func decodePayload(raw []byte, dst any) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return errs.Wrap("push: job payload", err)
	}
	return nil
}
