package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/catalog"
)

// metrics are the server's Prometheus metrics: RPC counts and latency by
// endpoint, Raft apply latency, and the catalog's sizes read at scrape time.
type metrics struct {
	rpc   *prometheus.HistogramVec
	apply prometheus.Histogram
}

// newMetrics registers the server's metrics with reg; a nil reg gives
// metrics that are kept but never exported.
func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		rpc: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meridian_rpc_request_duration_seconds",
			Help:    "Time a server took to answer an RPC, by endpoint and result (ok or error); the count is the number of RPCs.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"method", "result"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meridian_raft_apply_duration_seconds",
			Help:    "Time from handing a write to Raft until it was committed and applied.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.rpc, m.apply)
	size := func(name, help string, count func() int) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(count()) }))
	}
	size("meridian_catalog_nodes", "Nodes in this server's catalog.", func() int {
		tx, _ := s.readTxn()
		defer tx.Abort()
		_, nodes, _ := catalog.Nodes(tx, nil, nil)
		return len(nodes)
	})
	size("meridian_catalog_services", "Distinct service names in this server's catalog.", func() int {
		tx, _ := s.readTxn()
		defer tx.Abort()
		_, svcs, _ := catalog.Services(tx, nil, nil)
		return len(svcs)
	})
	for _, status := range []string{catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "meridian_catalog_checks",
			Help:        "Health checks in this server's catalog, by status.",
			ConstLabels: prometheus.Labels{"status": status},
		}, func() float64 {
			tx, _ := s.readTxn()
			defer tx.Abort()
			_, checks, _ := catalog.ChecksInState(tx, nil, status, nil)
			return float64(len(checks))
		}))
	}
	return m
}

// rpcObserver returns the function that records one call of method, with
// its histograms looked up once instead of per call.
func (m *metrics) rpcObserver(method string) func(start time.Time, err error) {
	ok := m.rpc.WithLabelValues(method, "ok")
	failed := m.rpc.WithLabelValues(method, "error")
	return func(start time.Time, err error) {
		if err != nil {
			failed.Observe(time.Since(start).Seconds())
			return
		}
		ok.Observe(time.Since(start).Seconds())
	}
}
