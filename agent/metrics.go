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

// dnsCollector exports the DNS server's counters at scrape time.
type dnsCollector struct{ a *Agent }

var (
	dnsQueriesDesc   = prometheus.NewDesc("meridian_dns_queries_total", "DNS queries answered.", nil, nil)
	dnsRcodesDesc    = prometheus.NewDesc("meridian_dns_responses_total", "DNS answers by response code.", []string{"rcode"}, nil)
	dnsForwardDesc   = prometheus.NewDesc("meridian_dns_forwarded_total", "DNS queries forwarded to recursors.", nil, nil)
	dnsLatencyDesc   = prometheus.NewDesc("meridian_dns_query_duration_seconds", "Time to answer a DNS query.", nil, nil)
	dnsViewsDesc     = prometheus.NewDesc("meridian_dns_views", "Services kept in the DNS server's local view.", nil, nil)
	_                = prometheus.Collector(dnsCollector{})
	dnsCollectorDesc = []*prometheus.Desc{dnsQueriesDesc, dnsRcodesDesc, dnsForwardDesc, dnsLatencyDesc, dnsViewsDesc}
)

func (c dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range dnsCollectorDesc {
		ch <- d
	}
}

func (c dnsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a.dns == nil {
		return
	}
	st := c.a.dns.Stats()
	ch <- prometheus.MustNewConstMetric(dnsQueriesDesc, prometheus.CounterValue, float64(st.Queries))
	for rcode, n := range st.Rcodes {
		ch <- prometheus.MustNewConstMetric(dnsRcodesDesc, prometheus.CounterValue, float64(n), rcode)
	}
	ch <- prometheus.MustNewConstMetric(dnsForwardDesc, prometheus.CounterValue, float64(st.Forwarded))
	buckets := make(map[float64]uint64, len(st.LatencyBounds))
	var cumulative uint64
	for i, bound := range st.LatencyBounds {
		cumulative += st.LatencyBuckets[i]
		buckets[bound.Seconds()] = cumulative
	}
	ch <- prometheus.MustNewConstHistogram(dnsLatencyDesc, st.Queries, st.LatencySum.Seconds(), buckets)
	ch <- prometheus.MustNewConstMetric(dnsViewsDesc, prometheus.GaugeValue, float64(st.Views))
}
