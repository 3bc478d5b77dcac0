package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// herdFloor is what the herd costs on this machine with nothing but Go's
// HTTP server between the watchers and the answer (herd -floor): a server
// in the tool's process that parks every blocking health read on one
// channel and, when a registration moves its index, answers them all with
// bytes it encoded once. No state, no Raft, no encoding per watcher: an
// agent cannot wake its watchers faster than this, so the floor's figures
// are the limit the agents' are measured against.
type herdFloor struct {
	srv *http.Server
	ln  net.Listener
	// size pads each answer to the agent's answer length.
	size int

	mu      sync.Mutex
	index   uint64
	answer  []byte
	length  string        // len(answer), for Content-Length
	changed chan struct{} // closed, and replaced, when index moves
}

// startHerdFloor serves a floor on 127.0.0.1:0, over HTTP/1.1 and h2c, its
// answers padded to size bytes.
func startHerdFloor(size int) (*herdFloor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	f := &herdFloor{ln: ln, size: size, index: 1, changed: make(chan struct{})}
	f.setAnswer(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/catalog/register", f.register)
	mux.HandleFunc("PUT /v1/catalog/deregister", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "true") })
	mux.HandleFunc("GET /v1/health/service/{name}", f.health)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	f.srv = &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// Addr is the floor's host:port.
func (f *herdFloor) Addr() string { return f.ln.Addr().String() }

// Close stops the floor and its parked reads.
func (f *herdFloor) Close() { _ = f.srv.Close() }

// setAnswer makes the health answer a JSON array holding the registration
// (it carries the round's marker), padded with spaces to f.size bytes.
func (f *herdFloor) setAnswer(reg []byte) {
	var b bytes.Buffer
	b.WriteByte('[')
	b.Write(reg)
	for b.Len() < f.size-1 {
		b.WriteByte(' ')
	}
	b.WriteByte(']')
	f.answer, f.length = b.Bytes(), strconv.Itoa(b.Len())
}

func (f *herdFloor) register(w http.ResponseWriter, r *http.Request) {
	reg, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.index++
	f.setAnswer(reg)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	io.WriteString(w, "true")
}

func (f *herdFloor) health(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	f.mu.Lock()
	idx, ch := f.index, f.changed
	f.mu.Unlock()
	if want >= idx {
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	f.mu.Lock()
	idx, answer, length := f.index, f.answer, f.length
	f.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", length)
	h.Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	_, _ = w.Write(answer)
}

// measureFloor runs h's rounds again against a floor whose answers are as
// long as the agents' (RESULT mode=herd-floor, rounds "herd-floor round"):
// the same watchers, connections and protocol, so the two runs differ only
// in what answers them. Its tool_cpu_s counts the floor server too, which
// runs in the tool's process.
func (h *herd) measureFloor(ctx context.Context, answerSize int) error {
	f, err := startHerdFloor(answerSize)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := *h
	fh.label = "herd-floor"
	fh.targets = []string{f.Addr()}
	fh.w = &requester{base: "http://" + f.Addr(), client: newClient(1, 10*time.Second)}
	defer fh.w.client.CloseIdleConnections()
	fh.pids, fh.servers, fh.profDir, fh.token = nil, nil, "", ""
	return fh.measure(ctx)
}
