package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConsul imitates, in memory, the few Consul HTTP endpoints the tool
// uses: KV get/put/delete, catalog register/deregister and health of a
// service, with blocking queries (?index=&wait=) that park until a write.
// One raft-like index counts every write. Several httptest servers may share
// one fakeConsul to stand for several agents of one cluster.
type fakeConsul struct {
	// putAnswer is the body of a successful KV PUT; "true" unless a test
	// wants the tool to see a refusal.
	putAnswer string
	// applyDelay holds back KV writes: a PUT is answered at once but applied,
	// and seen by any read, only this much later.
	applyDelay time.Duration
	// frozen acknowledges KV PUTs without ever applying them, like a cluster
	// that lost its quorum after answering: no read can show the write.
	frozen bool

	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed, and replaced, when a write becomes visible
	kv      map[string]fakeKV
	nodes   map[string]*fakeNode
	puts    uint64 // KV PUTs received

	requests     atomic.Int64 // every request
	healthGets   atomic.Int64 // GET /v1/health/service/...
	kvGets       atomic.Int64 // GET /v1/kv/...
	staleGets    atomic.Int64 // GETs with ?stale
	blockingGets atomic.Int64 // GETs with index > 0
	conns        atomic.Int64 // connections accepted, over all servers
}

type fakeKV struct {
	value       []byte
	modifyIndex uint64
	seq         uint64 // order of the PUT, so delayed applies keep PUT order
}

type fakeNode struct {
	address  string
	services map[string]fakeService
}

type fakeService struct {
	id, name    string
	port        int
	meta        map[string]string
	checkStatus string // "" when registered without a check
	checkOutput string
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{
		putAnswer: "true",
		index:     1,
		changed:   make(chan struct{}),
		kv:        map[string]fakeKV{},
		nodes:     map[string]*fakeNode{},
	}
}

// start serves f on a new httptest server on 127.0.0.1:0, closed at cleanup,
// and returns its host:port.
func (f *fakeConsul) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(f.handler())
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protocols
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// commitLocked bumps the index, under f.mu, and wakes the parked queries.
func (f *fakeConsul) commitLocked() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// block parks a GET with ?index=N while N is the current index, until a
// write, the wait= time or the client going away. It returns the index to
// answer with.
func (f *fakeConsul) block(r *http.Request) uint64 {
	q := r.URL.Query()
	if _, ok := q["stale"]; ok {
		f.staleGets.Add(1)
	}
	want, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	f.mu.Lock()
	cur, ch := f.index, f.changed
	f.mu.Unlock()
	if want == 0 || want < cur {
		return cur
	}
	f.blockingGets.Add(1)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	case <-r.Context().Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

func (f *fakeConsul) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		f.kvGets.Add(1)
		idx := f.block(r)
		f.mu.Lock()
		e, ok := f.kv[r.PathValue("key")]
		f.mu.Unlock()
		w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeJSON(w, []map[string]any{{
			"Key": r.PathValue("key"), "Value": e.value, "Flags": 0,
			"CreateIndex": e.modifyIndex, "ModifyIndex": e.modifyIndex,
		}})
	})
	mux.HandleFunc("PUT /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.PathValue("key")
		f.mu.Lock()
		f.puts++
		seq := f.puts
		f.mu.Unlock()
		apply := func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.kv[key].seq > seq {
				return // a later PUT was applied first: it wins, as in a log
			}
			f.kv[key] = fakeKV{value: body, modifyIndex: f.index + 1, seq: seq}
			f.commitLocked()
		}
		switch {
		case f.putAnswer != "true", f.frozen:
		case f.applyDelay > 0:
			time.AfterFunc(f.applyDelay, apply)
		default:
			apply()
		}
		io.WriteString(w, f.putAnswer)
	})
	mux.HandleFunc("DELETE /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		delete(f.kv, r.PathValue("key"))
		f.commitLocked()
		f.mu.Unlock()
		io.WriteString(w, "true")
	})
	mux.HandleFunc("PUT /v1/catalog/register", func(w http.ResponseWriter, r *http.Request) {
		var reg struct {
			Node, Address string
			Service       *struct {
				ID, Service string
				Port        int
				Meta        map[string]string
			}
			Check *struct{ ServiceID, Status, Output string }
		}
		if err := json.NewDecoder(r.Body).Decode(&reg); err != nil || reg.Node == "" {
			http.Error(w, "bad registration", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		n := f.nodes[reg.Node]
		if n == nil {
			n = &fakeNode{services: map[string]fakeService{}}
			f.nodes[reg.Node] = n
		}
		n.address = reg.Address
		if s := reg.Service; s != nil {
			svc := fakeService{id: s.ID, name: s.Service, port: s.Port, meta: s.Meta}
			if c := reg.Check; c != nil && c.ServiceID == s.ID {
				svc.checkStatus, svc.checkOutput = c.Status, c.Output
			}
			n.services[s.ID] = svc
		}
		f.commitLocked()
		f.mu.Unlock()
		io.WriteString(w, "true")
	})
	mux.HandleFunc("PUT /v1/catalog/deregister", func(w http.ResponseWriter, r *http.Request) {
		var dereg struct{ Node, ServiceID string }
		if err := json.NewDecoder(r.Body).Decode(&dereg); err != nil || dereg.Node == "" {
			http.Error(w, "bad deregistration", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		if n := f.nodes[dereg.Node]; n != nil && dereg.ServiceID != "" {
			delete(n.services, dereg.ServiceID)
		} else {
			delete(f.nodes, dereg.Node)
		}
		f.commitLocked()
		f.mu.Unlock()
		io.WriteString(w, "true")
	})
	mux.HandleFunc("GET /v1/health/service/{name}", func(w http.ResponseWriter, r *http.Request) {
		f.healthGets.Add(1)
		idx := f.block(r)
		_, passingOnly := r.URL.Query()["passing"]
		entries := []map[string]any{}
		f.mu.Lock()
		for _, name := range sortedKeys(f.nodes) {
			n := f.nodes[name]
			for _, s := range n.services {
				if s.name != r.PathValue("name") || (passingOnly && s.checkStatus != "" && s.checkStatus != "passing") {
					continue
				}
				checks := []map[string]any{}
				if s.checkStatus != "" {
					checks = append(checks, map[string]any{"Node": name, "ServiceID": s.id, "Status": s.checkStatus, "Output": s.checkOutput})
				}
				entries = append(entries, map[string]any{
					"Node":    map[string]any{"Node": name, "Address": n.address},
					"Service": map[string]any{"ID": s.id, "Service": s.name, "Port": s.port, "Meta": s.meta},
					"Checks":  checks,
				})
			}
		}
		f.mu.Unlock()
		w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
		writeJSON(w, entries)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such thing", http.StatusInternalServerError)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		mux.ServeHTTP(w, r)
	})
}

// snapshotKV returns a copy of the KV store.
func (f *fakeConsul) snapshotKV() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]byte, len(f.kv))
	for k, e := range f.kv {
		out[k] = e.value
	}
	return out
}

// service returns the instance of service id on node, if registered.
func (f *fakeConsul) service(node, id string) (fakeService, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[node]
	if n == nil {
		return fakeService{}, false
	}
	s, ok := n.services[id]
	return s, ok
}

// nodeCount returns how many nodes are registered.
func (f *fakeConsul) nodeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.nodes)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
