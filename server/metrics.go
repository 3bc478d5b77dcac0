package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian/meridian/catalog"
)

// metrics are the server's Prometheus metrics under Consul's names (the
// prefix is telemetry.metrics_prefix, consul by default): RPCs served
// (consul_rpc_request, and consul_rpc_server_call in milliseconds by
// method and errored), the time of each kind of write from the call to
// its apply (consul_kvs_apply, consul_txn_apply, consul_catalog_register,
// ...), and the state's sizes read at scrape time (consul_state_nodes,
// consul_state_services, consul_catalog_checks by status), and Meridian's
// consul_health_service_evaluations (the health reads blocking queries
// share). Raft's own
// (consul_raft_apply, consul_raft_commitTime, ...) come from the raft
// library through the agent's go-metrics bridge. A series is made on its
// first use.
type metrics struct {
	requests prometheus.Counter
	calls    *prometheus.SummaryVec
	applies  map[msgType]*lazyObserver
	kvRepl   kvReplicationMetrics
}

// kvReplicationMetrics are KV replication's, by source datacenter and
// prefix: consul_kv_replication_lag (milliseconds, see
// rpc.KVReplicationStatus.Lag), consul_kv_replication_index (the source
// index the copy is complete up to), consul_kv_replication_applied (keys
// written or deleted) and consul_kv_replication_errors (failed rounds).
type kvReplicationMetrics struct {
	lag, index      *prometheus.GaugeVec
	applied, errors *prometheus.CounterVec
}

// consulObjectives are the quantiles Consul's Prometheus output has for
// every timer (over its last 10 seconds).
var consulObjectives = map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}

// applyMetrics names the timer of each write, as Consul's endpoints name
// theirs.
var applyMetrics = map[msgType]struct{ name, help string }{
	msgRegister:    {"catalog_register", "Milliseconds to register a node, service or check through Raft."},
	msgDeregister:  {"catalog_deregister", "Milliseconds to deregister a node, service or check through Raft."},
	msgKV:          {"kvs_apply", "Milliseconds to apply a KV write through Raft."},
	msgSession:     {"session_apply", "Milliseconds to apply a session write through Raft."},
	msgTxn:         {"txn_apply", "Milliseconds to apply a transaction through Raft."},
	msgKVReap:      {"kvs_reap", "Milliseconds to reap KV tombstones through Raft."},
	msgCoordinate:  {"coordinate_batch_update", "Milliseconds to apply a batch of coordinates through Raft."},
	msgQuery:       {"prepared_query_apply", "Milliseconds to apply a prepared query write through Raft."},
	msgACL:         {"acl_apply", "Milliseconds to apply an ACL write through Raft."},
	msgAutopilot:   {"autopilot_apply", "Milliseconds to apply an autopilot configuration through Raft."},
	msgKVReplicate: {"kv_replication_apply", "Milliseconds to apply a batch of KV changes replicated from another datacenter through Raft."},
}

// lazyObserver is a summary that has no series until its first
// observation.
type lazyObserver struct {
	once sync.Once
	vec  *prometheus.SummaryVec
	obs  prometheus.Observer
}

func (l *lazyObserver) observeSince(start time.Time) {
	l.once.Do(func() { l.obs = l.vec.WithLabelValues() })
	l.obs.Observe(float64(time.Since(start)) / float64(time.Millisecond))
}

// newMetrics registers the server's metrics with reg, named with prefix;
// a nil reg gives metrics that are kept but never exported.
func newMetrics(reg prometheus.Registerer, prefix string, s *Server) *metrics {
	if prefix == "" {
		prefix = "consul"
	}
	timer := func(name, help string, labels ...string) *prometheus.SummaryVec {
		return prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: prefix + "_" + name, Help: help, Objectives: consulObjectives, MaxAge: 10 * time.Second,
		}, labels)
	}
	m := &metrics{
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_rpc_request", Help: "RPCs this server answered."}),
		calls:    timer("rpc_server_call", "Milliseconds a server took to answer an RPC, by method and whether it failed.", "method", "errored"),
		applies:  make(map[msgType]*lazyObserver, len(applyMetrics)),
		kvRepl: kvReplicationMetrics{
			lag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: prefix + "_kv_replication_lag", Help: "Milliseconds the KV copy of a prefix was behind its source datacenter at its last round."}, []string{"source", "prefix"}),
			index:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: prefix + "_kv_replication_index", Help: "The source datacenter's index the KV copy of a prefix is complete up to."}, []string{"source", "prefix"}),
			applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_kv_replication_applied", Help: "Keys written or deleted by KV replication from another datacenter."}, []string{"source", "prefix"}),
			errors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_kv_replication_errors", Help: "Rounds of KV replication from another datacenter that failed."}, []string{"source", "prefix"}),
		},
	}
	collectors := []prometheus.Collector{m.requests, m.calls, m.kvRepl.lag, m.kvRepl.index, m.kvRepl.applied, m.kvRepl.errors}
	for t, am := range applyMetrics {
		l := &lazyObserver{vec: timer(am.name, am.help)}
		m.applies[t] = l
		collectors = append(collectors, l.vec)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(collectors...)
	size := func(name, help string, count func() int) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_" + name, Help: help},
			func() float64 { return float64(count()) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: prefix + "_health_service_evaluations",
		Help: "Reads of a service's health from the state store: one per (query, index) however many callers ask (Meridian's own).",
	}, func() float64 { return float64(s.answers.evaluations.Load()) }))
	s.registerStreamMetrics(reg, prefix)
	size("state_nodes", "Nodes in this server's catalog.", func() int {
		tx, _ := s.readTxn()
		defer tx.Abort()
		_, nodes, _ := catalog.Nodes(tx, nil, nil)
		return len(nodes)
	})
	size("state_services", "Distinct service names in this server's catalog.", func() int {
		tx, _ := s.readTxn()
		defer tx.Abort()
		_, svcs, _ := catalog.Services(tx, nil, nil)
		return len(svcs)
	})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: prefix + "_autopilot_healthy",
		Help: "1 when autopilot's last check found every server healthy, 0 when not; -1 on a server that does not lead.",
	}, s.autopilotHealthy))
	for _, status := range []string{catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        prefix + "_catalog_checks",
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

// rpcObserver returns the function that records one call of method, each
// of its two series looked up on its first use instead of per call.
func (m *metrics) rpcObserver(method string) func(start time.Time, err error) {
	var results [2]lazyObserver // ok, errored
	return func(start time.Time, err error) {
		m.requests.Inc()
		errored := err != nil
		i := 0
		if errored {
			i = 1
		}
		r := &results[i]
		r.once.Do(func() { r.obs = m.calls.WithLabelValues(method, strconv.FormatBool(errored)) })
		r.obs.Observe(float64(time.Since(start)) / float64(time.Millisecond))
	}
}

// applied records a write of type t that took since start.
func (m *metrics) applied(t msgType, start time.Time) {
	if t == msgCatalogTxn {
		t = msgTxn // one timer for every transaction, as Consul's
	}
	if l := m.applies[t]; l != nil {
		l.observeSince(start)
	}
}
