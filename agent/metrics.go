package agent

import (
	"strings"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/meridian/meridian/configs"
)

// goMetrics is what raft, serf, memberlist and the Go runtime emit
// through go-metrics (consul.raft.apply, consul.serf.member.join,
// consul.runtime.alloc_bytes, ...): bridged into a Prometheus registry
// and kept in memory for the JSON of /v1/agent/metrics, as Consul's
// agent keeps them.
type goMetrics struct {
	gatherer prometheus.Gatherer
	inmem    *gometrics.InmemSink
}

// globalGoMetrics installs the bridge. go-metrics keeps one global sink
// per process, so it is installed once, with the telemetry settings of
// the first agent of the process (in production there is one).
var (
	globalGoMetricsOnce sync.Once
	globalGoMetrics     goMetrics
)

func installGoMetrics(t configs.Telemetry) goMetrics {
	globalGoMetricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		inmem := gometrics.NewInmemSink(10*time.Second, time.Minute)
		globalGoMetrics = goMetrics{gatherer: reg, inmem: inmem}
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: t.PrometheusRetentionTime})
		if err != nil {
			return
		}
		cfg := gometrics.DefaultConfig(t.MetricsPrefix)
		cfg.EnableHostname = !t.DisableHostname
		cfg.EnableHostnameLabel = false
		cfg.EnableServiceLabel = false
		_, _ = gometrics.NewGlobal(cfg, gometrics.FanoutSink{inmem, sink})
	})
	return globalGoMetrics
}

// newMetrics returns the agent's registry (its own metrics, Go runtime and
// process), the gatherer /v1/agent/metrics?format=prometheus reports (that
// registry plus the go-metrics bridge) and the function that makes the
// endpoint's JSON.
func newMetrics(t configs.Telemetry) (*prometheus.Registry, prometheus.Gatherer, func() (any, error)) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gm := installGoMetrics(t)
	return reg, prometheus.Gatherers{reg, gm.gatherer}, func() (any, error) {
		return metricsJSON(gm.inmem, reg, t.MetricsPrefix)
	}
}

// metricsJSON is Consul's JSON of /v1/agent/metrics: the last finished
// interval of what go-metrics received, plus the agent's own Prometheus
// metrics (HTTP, RPC, writes, DNS, state sizes) named as Consul names
// them in JSON (consul.api.http for consul_api_http). The Go collector's
// go_* and process_* are Prometheus' own and left to that format; the
// runtime's figures are in consul.runtime.*.
func metricsJSON(inmem *gometrics.InmemSink, own prometheus.Gatherer, prefix string) (any, error) {
	out := gometrics.MetricsSummary{
		Timestamp: time.Now().Truncate(10 * time.Second).UTC().Format("2006-01-02 15:04:05 -0700 MST"),
		Gauges:    []gometrics.GaugeValue{}, PrecisionGauges: []gometrics.PrecisionGaugeValue{}, Points: []gometrics.PointValue{},
		Counters: []gometrics.SampledValue{}, Samples: []gometrics.SampledValue{},
	}
	if sum, err := inmem.DisplayMetrics(nil, nil); err == nil {
		if s, ok := sum.(gometrics.MetricsSummary); ok {
			out = s
		}
	}
	families, err := own.Gather()
	if err != nil {
		return nil, err
	}
	for _, f := range families {
		name, ok := dottedName(f.GetName(), prefix)
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				out.Gauges = append(out.Gauges, gometrics.GaugeValue{Name: name, Value: float32(m.GetGauge().GetValue()), DisplayLabels: labels})
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				out.Counters = append(out.Counters, sampled(name, labels, uint64(v), v))
			case m.Summary != nil:
				out.Samples = append(out.Samples, sampled(name, labels, m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum()))
			case m.Histogram != nil:
				out.Samples = append(out.Samples, sampled(name, labels, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()))
			}
		}
	}
	return out, nil
}

func sampled(name string, labels map[string]string, count uint64, sum float64) gometrics.SampledValue {
	s := gometrics.SampledValue{Name: name, AggregateSample: &gometrics.AggregateSample{Count: int(count), Sum: sum}, DisplayLabels: labels}
	if count > 0 {
		s.Mean = sum / float64(count)
	}
	return s
}

// dottedWords are the parts of the agent's own metric names that keep an
// underscore (or become a hyphen) in Consul's dotted spelling.
var dottedWords = strings.NewReplacer("domain.query", "domain_query", "prepared.query", "prepared-query", "batch.update", "batch-update")

// dottedName spells a Prometheus name of the agent's own as Consul's JSON
// does: consul_kvs_apply is consul.kvs.apply. Names without the prefix
// (go_*, process_*) are not the agent's.
func dottedName(name, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"_")
	if !ok {
		return "", false
	}
	return prefix + "." + dottedWords.Replace(strings.ReplaceAll(rest, "_", ".")), true
}

// dnsCollector exports the DNS server's counters at scrape time:
// consul_dns_domain_query (milliseconds, Consul's timer of every query),
// and the counts of queries, answers by response code and forwards to
// recursors, and the services the DNS view holds.
type dnsCollector struct {
	a                                   *Agent
	queries, rcodes, forwarded, latency *prometheus.Desc
	views                               *prometheus.Desc
}

func newDNSCollector(a *Agent, prefix string) dnsCollector {
	return dnsCollector{
		a:         a,
		queries:   prometheus.NewDesc(prefix+"_dns_queries", "DNS queries answered.", nil, nil),
		rcodes:    prometheus.NewDesc(prefix+"_dns_responses", "DNS answers by response code.", []string{"rcode"}, nil),
		forwarded: prometheus.NewDesc(prefix+"_dns_forwarded", "DNS queries forwarded to recursors.", nil, nil),
		latency:   prometheus.NewDesc(prefix+"_dns_domain_query", "Milliseconds to answer a DNS query.", nil, nil),
		views:     prometheus.NewDesc(prefix+"_dns_views", "Services kept in the DNS server's local view.", nil, nil),
	}
}

func (c dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queries, c.rcodes, c.forwarded, c.latency, c.views} {
		ch <- d
	}
}

func (c dnsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a.dns == nil {
		return
	}
	st := c.a.dns.Stats()
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(st.Queries))
	for rcode, n := range st.Rcodes {
		ch <- prometheus.MustNewConstMetric(c.rcodes, prometheus.CounterValue, float64(n), rcode)
	}
	ch <- prometheus.MustNewConstMetric(c.forwarded, prometheus.CounterValue, float64(st.Forwarded))
	buckets := make(map[float64]uint64, len(st.LatencyBounds))
	var cumulative uint64
	for i, bound := range st.LatencyBounds {
		cumulative += st.LatencyBuckets[i]
		buckets[float64(bound)/float64(time.Millisecond)] = cumulative
	}
	ms := float64(st.LatencySum) / float64(time.Millisecond)
	ch <- prometheus.MustNewConstHistogram(c.latency, st.Queries, ms, buckets)
	ch <- prometheus.MustNewConstMetric(c.views, prometheus.GaugeValue, float64(st.Views))
}

var _ prometheus.Collector = dnsCollector{}
