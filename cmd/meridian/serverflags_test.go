package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/testcluster"
)

// recorder is a stand-in agent that answers every request 200 "{}" and
// records the query strings it was sent.
type recorder struct {
	mu      sync.Mutex
	queries []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.queries = append(rec.queries, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	rec.mu.Unlock()
	w.Write([]byte("{}"))
}

func (rec *recorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	q := rec.queries
	rec.queries = nil
	return q
}

// TestServerFlags: every command Consul gives -datacenter and -stale takes
// them (and lists them in -h); each of its requests then carries ?dc=, and
// ?stale where the command reads (a write takes -stale, as Consul's does,
// and goes to the leader).
func TestServerFlags(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	addr := "-http-addr=" + srv.Listener.Addr().String()
	snap := filepath.Join(t.TempDir(), "snap")
	cases := []struct {
		args      []string
		readStale bool // -stale reaches the agent as ?stale
	}{
		{[]string{"kv", "get", "k"}, true},
		{[]string{"kv", "export", "p/"}, true},
		{[]string{"kv", "put", "k", "v"}, false},
		{[]string{"kv", "delete", "k"}, false},
		{[]string{"kv", "import", `[{"key":"a","flags":0,"value":"eA=="}]`}, false},
		{[]string{"catalog", "services"}, true},
		{[]string{"catalog", "nodes"}, true},
		{[]string{"event", "-name", "deploy"}, false},
		{[]string{"snapshot", "save", snap}, true},
		{[]string{"operator", "raft", "list-peers"}, true},
		{[]string{"operator", "raft", "remove-peer", "-id", "x"}, false},
		{[]string{"operator", "raft", "transfer-leader"}, false},
		{[]string{"operator", "autopilot", "get-config"}, true},
		{[]string{"operator", "autopilot", "set-config", "-cleanup-dead-servers=false"}, false},
		{[]string{"operator", "autopilot", "state"}, true},
		{[]string{"acl", "token", "list"}, true},
		{[]string{"acl", "policy", "list"}, true},
	}
	for _, tc := range cases {
		name := strings.Join(tc.args[:2], " ")
		t.Run(name, func(t *testing.T) {
			rec.take()
			n := map[string]int{"event": 1, "kv": 2, "catalog": 2, "snapshot": 2, "operator": 3, "acl": 3}[tc.args[0]]
			cmd := tc.args[:n]
			args := append(append(append([]string{}, cmd...), addr, "-datacenter", "dc2", "-stale"), tc.args[n:]...)
			code, _, errOut := meridian(args...)
			if code == 2 || strings.Contains(errOut, "flag provided but not defined") {
				t.Fatalf("meridian %v = exit %d, %q: want -datacenter and -stale taken", args, code, errOut)
			}
			queries := rec.take()
			if len(queries) == 0 {
				t.Fatalf("meridian %v sent nothing (exit %d, %q)", args, code, errOut)
			}
			for _, q := range queries {
				if !strings.Contains(q, "dc=dc2") {
					t.Errorf("meridian %v sent %q, without dc=dc2", args, q)
				}
				if stale := strings.Contains(q, "stale"); stale != tc.readStale {
					t.Errorf("meridian %v sent %q: stale there = %v, want %v", args, q, stale, tc.readStale)
				}
			}
			_, _, help := meridian(append(append([]string{}, cmd...), "-h")...)
			if !strings.Contains(help, "-datacenter") || !strings.Contains(help, "-stale") {
				t.Errorf("meridian %v -h lists no -datacenter or -stale:\n%s", cmd, help)
			}
		})
	}
	for _, cmd := range [][]string{{"lock"}, {"exec"}, {"watch"}, {"snapshot", "restore"}, {"acl", "role", "read"}} {
		_, _, help := meridian(append(append([]string{}, cmd...), "-h")...)
		if !strings.Contains(help, "-datacenter") || !strings.Contains(help, "-stale") {
			t.Errorf("meridian %v -h lists no -datacenter or -stale:\n%s", cmd, help)
		}
	}
}

// TestSnapshotOfAnotherDatacenter: the agent takes and restores snapshots
// of its own datacenter only, and says so in one line rather than
// answering with its own.
func TestSnapshotOfAnotherDatacenter(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	c.WaitLeader(10 * time.Second)
	addr := "-http-addr=" + c.Servers[0].HTTPAddr()
	file := filepath.Join(t.TempDir(), "snap")
	code, _, errOut := meridian("snapshot", "save", addr, "-datacenter", "dc9", file)
	if code != 1 || !strings.Contains(errOut, "not forwarded") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("snapshot save -datacenter dc9 = exit %d, %q; want 1 and one line saying snapshots are not forwarded", code, errOut)
	}
	if code, _, errOut := meridian("snapshot", "save", addr, "-datacenter", "dc1", file); code != 0 {
		t.Errorf("snapshot save -datacenter dc1 (its own) = exit %d, %q", code, errOut)
	}
}
