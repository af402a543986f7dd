package filter

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are imipd's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	Messages    *prometheus.CounterVec   // imipd_messages_total{transport,calendar}
	outcomes    *prometheus.CounterVec   // imipd_outcomes_total{method,outcome}
	latency     *prometheus.HistogramVec // imipd_processing_seconds{transport}
	storeErrors prometheus.Counter       // imipd_store_errors_total
}

// NewMetrics registers the metrics with reg. outboxDepth, when not nil, is
// read at scrape time for imipd_outbox_queued.
func NewMetrics(reg prometheus.Registerer, outboxDepth func() float64) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imipd_messages_total",
			Help: "Messages seen, by transport and whether they carried calendar data."}, []string{"transport", "calendar"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imipd_outcomes_total",
			Help: "Outcomes given, one per recipient and iTIP object, by method and outcome."}, []string{"method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "imipd_processing_seconds",
			Help:    "Time to process one message, by transport.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"transport"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "imipd_store_errors_total",
			Help: "Processing calls that failed in the store (the transport applied its error policy)."}),
	}
	reg.MustRegister(m.Messages, m.outcomes, m.latency, m.storeErrors)
	if outboxDepth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "imipd_outbox_queued",
			Help: "iTIP messages waiting in the outbox."}, outboxDepth))
	}
	return m
}

// outcomeRepeat is the imipd_outcomes_total label of a message processed
// before for the user (Result.Repeat): a retried delivery or a second scan
// adds to it, not to the outcome it had the first time.
const outcomeRepeat = "repeat"

// observe records one processing call (never a dry run).
func (m *Metrics) observe(transport string, rep *Report, d time.Duration, err error) {
	if m == nil {
		return
	}
	cal := "no"
	if rep != nil && rep.Calendar {
		cal = "yes"
	}
	m.Messages.WithLabelValues(transport, cal).Inc()
	m.latency.WithLabelValues(transport).Observe(d.Seconds())
	if err != nil && !errors.Is(err, errDryRun) {
		m.storeErrors.Inc()
	}
	if rep != nil {
		for _, r := range rep.Results {
			method := r.Method
			if method == "" {
				method = "none"
			}
			outcome := string(r.Outcome)
			if r.Repeat {
				outcome = outcomeRepeat // counted once, when it happened
			}
			m.outcomes.WithLabelValues(method, outcome).Inc()
		}
	}
}
