package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Poll results: the values of the `result` label of umeeting_polls_total.
const (
	PollSuccess = "success"
	PollFailure = "failure"
)

// Instruments are the exporter's own live counters and gauges, registered
// once; per-account label values are set up by InitAccount.
type Instruments struct {
	APIRequests       *prometheus.CounterVec
	Polls             *prometheus.CounterVec
	StateSaveFailures *prometheus.CounterVec
	ReloadSuccess     prometheus.Gauge
	ReloadTimestamp   prometheus.Gauge
}

// NewInstruments creates the instruments and registers them with reg.
func NewInstruments(reg prometheus.Registerer) *Instruments {
	i := &Instruments{
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "Requests made to the UMeeting hisMeeting API, by result (success or the kind of failure).",
		}, []string{"account", "result"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "polls_total",
			Help: "Polls of the account's history (each one or more API requests), by result.",
		}, []string{"account", "result"}),
		StateSaveFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "state_save_failures_total",
			Help: "Failed attempts to save the account's state to disk; counts are then at risk on a restart.",
		}, []string{"account"}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "1 when the last configuration (re)load succeeded, 0 when it failed.",
		}),
		ReloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration (re)load.",
		}),
	}
	reg.MustRegister(i.APIRequests, i.Polls, i.StateSaveFailures, i.ReloadSuccess, i.ReloadTimestamp)
	return i
}

// InitAccount creates every series of an account at zero, so rates and
// alerts work before the first failure.
func (i *Instruments) InitAccount(name string) {
	for _, r := range umeeting.RequestResults {
		i.APIRequests.WithLabelValues(name, r)
	}
	i.Polls.WithLabelValues(name, PollSuccess)
	i.Polls.WithLabelValues(name, PollFailure)
	i.StateSaveFailures.WithLabelValues(name)
}

// DeleteAccount removes the series of an account no longer configured.
func (i *Instruments) DeleteAccount(name string) {
	for _, v := range []*prometheus.CounterVec{i.APIRequests, i.Polls, i.StateSaveFailures} {
		v.DeletePartialMatch(prometheus.Labels{"account": name})
	}
}
