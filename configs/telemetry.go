package configs

import (
	"regexp"
	"time"
)

// Telemetry names and keeps the agent's metrics (the telemetry block, as
// Consul's).
type Telemetry struct {
	// MetricsPrefix starts every metric name: consul_raft_apply in
	// Prometheus, consul.raft.apply in /v1/agent/metrics JSON. Default
	// "consul", as Consul's, so dashboards and alerts written for Consul
	// find their series.
	MetricsPrefix string `config:"metrics_prefix"`
	// PrometheusRetentionTime is how long a series of raft, serf,
	// memberlist or the runtime that stopped being updated is still
	// exported. Default 60s; Consul's default of 0
	// turns its Prometheus output off, Meridian's output is always on.
	PrometheusRetentionTime time.Duration `config:"prometheus_retention_time"`
	// DisableHostname keeps the host's name out of gauge names (Consul
	// puts it in by default: consul.HOST.runtime.alloc_bytes); Prometheus
	// setups set it to true.
	DisableHostname bool `config:"disable_hostname"`
}

func defaultTelemetry() Telemetry {
	return Telemetry{MetricsPrefix: "consul", PrometheusRetentionTime: time.Minute}
}

// metricsPrefixRE is what Prometheus takes as the start of a metric name.
var metricsPrefixRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (v *validation) telemetry() {
	t := v.c.Telemetry
	if !metricsPrefixRE.MatchString(t.MetricsPrefix) {
		v.failf("telemetry.metrics_prefix", "must be letters, digits and _ and not start with a digit (a Prometheus name), got %q", t.MetricsPrefix)
	}
	v.notNegative("telemetry.prometheus_retention_time", t.PrometheusRetentionTime)
}
