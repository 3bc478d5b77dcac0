package httpapi

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// httpMetrics times requests by endpoint pattern and status class.
type httpMetrics struct {
	requests *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meridian_http_request_duration_seconds",
		Help:    "Time to answer an HTTP API request, by endpoint pattern and status code class.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
	}, []string{"endpoint", "code"})}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

// observer returns the recorder of one endpoint, its histograms looked up
// once.
func (m *httpMetrics) observer(pattern string) func(start time.Time, code int) {
	classes := [6]prometheus.Observer{}
	for i, class := range []string{"", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		if class != "" {
			classes[i] = m.requests.WithLabelValues(pattern, class)
		}
	}
	return func(start time.Time, code int) {
		if c := code / 100; c >= 1 && c <= 5 {
			classes[c].Observe(time.Since(start).Seconds())
		}
	}
}

// agentMetrics answers /v1/agent/metrics: the Prometheus text format with
// ?format=prometheus (what Prometheus scrapes), else Consul's JSON summary.
func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Gatherer == nil {
		return nil, &notFound{msg: "metrics are not enabled on this agent"}
	}
	if r.URL.Query().Get("format") == "prometheus" {
		promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return nil, errAnswered
	}
	families, err := s.cfg.Gatherer.Gather()
	if err != nil {
		return nil, err
	}
	return jsonMetrics(families), nil
}

// metricsSummary is Consul's JSON shape of /v1/agent/metrics.
type metricsSummary struct {
	Timestamp string
	Gauges    []metricValue
	Points    []metricValue
	Counters  []metricSample
	Samples   []metricSample
}

type metricValue struct {
	Name   string
	Value  float64
	Labels map[string]string
}

type metricSample struct {
	Name   string
	Count  uint64
	Sum    float64
	Mean   float64
	Labels map[string]string
}

func jsonMetrics(families []*dto.MetricFamily) metricsSummary {
	out := metricsSummary{
		Timestamp: time.Now().UTC().Format("2006-01-02 15:04:05 +0000 UTC"),
		Gauges:    []metricValue{}, Points: []metricValue{}, Counters: []metricSample{}, Samples: []metricSample{},
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				out.Gauges = append(out.Gauges, metricValue{Name: f.GetName(), Value: m.GetGauge().GetValue(), Labels: labels})
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				out.Counters = append(out.Counters, metricSample{Name: f.GetName(), Count: uint64(v), Sum: v, Mean: 1, Labels: labels})
			case m.Histogram != nil:
				h := m.GetHistogram()
				s := metricSample{Name: f.GetName(), Count: h.GetSampleCount(), Sum: h.GetSampleSum(), Labels: labels}
				if s.Count > 0 {
					s.Mean = s.Sum / float64(s.Count)
				}
				out.Samples = append(out.Samples, s)
			case m.Summary != nil:
				sm := m.GetSummary()
				s := metricSample{Name: f.GetName(), Count: sm.GetSampleCount(), Sum: sm.GetSampleSum(), Labels: labels}
				if s.Count > 0 {
					s.Mean = s.Sum / float64(s.Count)
				}
				out.Samples = append(out.Samples, s)
			}
		}
	}
	return out
}
