package agent

import (
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// raftSerfMetrics bridges what raft, serf and memberlist emit through
// go-metrics into Prometheus. go-metrics keeps one global sink per process,
// so the bridge is installed once and its registry is shared by every agent
// of the process (in production there is one).
var raftSerfMetrics = sync.OnceValue(func() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: time.Minute})
	if err != nil {
		return reg
	}
	cfg := gometrics.DefaultConfig("meridian")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false // the Go collector reports them
	_, _ = gometrics.NewGlobal(cfg, sink)
	return reg
})

// newMetrics returns the agent's registry (its own metrics, Go runtime and
// process) and the gatherer /v1/agent/metrics reports: that registry plus
// the raft/serf bridge.
func newMetrics() (*prometheus.Registry, prometheus.Gatherer) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, prometheus.Gatherers{reg, raftSerfMetrics()}
}
