package httpapi

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics times requests as Consul's consul.api.http: a summary in
// milliseconds by method and path, where the path is the endpoint's
// pattern with dots for slashes and _ for each variable part
// (v1.kv._). A series is made the first time its method and path are
// answered, so an agent exports only what it was asked.
type httpMetrics struct {
	requests *prometheus.SummaryVec
}

// consulObjectives are the quantiles Consul's Prometheus output has for
// every timer, over the last consulMaxAge.
var consulObjectives = map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}

const consulMaxAge = 10 * time.Second

func newHTTPMetrics(reg prometheus.Registerer, prefix string) *httpMetrics {
	if prefix == "" {
		prefix = "consul"
	}
	m := &httpMetrics{requests: prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name:       prefix + "_api_http",
		Help:       "Milliseconds to answer an HTTP API request, by method and path.",
		Objectives: consulObjectives,
		MaxAge:     consulMaxAge,
	}, []string{"method", "path"})}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

// metricPath is the path label of pattern: "GET /v1/kv/{key...}" is
// v1.kv._.
func metricPath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	parts := strings.Split(strings.Trim(pattern, "/"), "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			parts[i] = "_"
		}
	}
	return strings.Join(parts, ".")
}

// httpMethods are the methods an observer keeps a series for without a
// lookup; any other method shares the last slot's lookup.
var httpMethods = [...]string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead}

// observer returns the recorder of one endpoint. Each method's series is
// looked up once, on its first request.
func (m *httpMetrics) observer(pattern string) func(method string, start time.Time) {
	path := metricPath(pattern)
	var (
		once [len(httpMethods)]sync.Once
		obs  [len(httpMethods)]prometheus.Observer
	)
	return func(method string, start time.Time) {
		ms := float64(time.Since(start)) / float64(time.Millisecond)
		for i, known := range httpMethods {
			if method == known {
				once[i].Do(func() { obs[i] = m.requests.WithLabelValues(method, path) })
				obs[i].Observe(ms)
				return
			}
		}
		m.requests.WithLabelValues(method, path).Observe(ms)
	}
}

// agentMetrics answers /v1/agent/metrics: the Prometheus text format with
// ?format=prometheus (what Prometheus scrapes), else Consul's JSON summary.
func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Gatherer == nil || s.cfg.MetricsJSON == nil {
		return nil, &notFound{msg: "metrics are not enabled on this agent"}
	}
	if r.URL.Query().Get("format") == "prometheus" {
		promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return nil, errAnswered
	}
	return s.cfg.MetricsJSON()
}
