package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/kvstore"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
)

// TestShutdownWithAppliesInFlight: writes waiting on Raft when the server
// shuts down all return, with server.ErrShutdown, within a second, even
// though Raft will never answer some of them (here the leader's disk is
// stalled, so none is applied; raft also drops the answer of entries still
// queued for the FSM when it stops).
func TestShutdownWithAppliesInFlight(t *testing.T) {
	var gate *server.GatedLog
	c := testcluster.New(t, testcluster.Options{Servers: 1, TuneServer: func(cfg *server.Config) {
		cfg.WrapRaftLog = func(disk raft.LogStore) raft.LogStore {
			gate = server.NewGatedLog(disk)
			return gate
		}
	}})
	srv := c.WaitLeader(10 * time.Second).Agent().Server()
	base, err := lastLogIndex(srv)
	if err != nil {
		t.Fatal(err)
	}
	gate.SetShut(true)
	// Open the gate once the test is over, so that the server's shutdown
	// (which waits for the disk write in progress) completes.
	t.Cleanup(func() { gate.SetShut(false) })

	const writers = 100
	errs := make(chan error, writers)
	var started sync.WaitGroup
	for i := range writers {
		started.Add(1)
		go func() {
			started.Done()
			args := rpc.Write[kvstore.KVRequest]{Args: kvstore.KVRequest{Op: kvstore.VerbSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v")}}
			var reply rpc.WriteResult
			errs <- srv.Call(context.Background(), rpc.MethodKVApply, &args, &reply)
		}()
	}
	started.Wait()
	// Every write is in Raft's log (queued behind the stalled disk).
	testcluster.Eventually(t, 10*time.Second, func() error {
		last, err := lastLogIndex(srv)
		if err != nil {
			return err
		}
		if last < base+writers {
			return fmt.Errorf("last log index %d, want %d", last, base+writers)
		}
		return nil
	})

	go srv.Shutdown()
	deadline := time.After(time.Second)
	for i := range writers {
		select {
		case err := <-errs:
			if !errors.Is(err, server.ErrShutdown) {
				t.Errorf("write %d answered %v, want server.ErrShutdown", i, err)
			}
		case <-deadline:
			t.Fatalf("%d of %d writes still waiting 1s after shutdown began", writers-i, writers)
		}
	}
}

// lastLogIndex is the last index in srv's Raft log.
func lastLogIndex(srv *server.Server) (uint64, error) {
	return strconv.ParseUint(srv.Stats()["last_log_index"], 10, 64)
}

// applyTimers are the server's timers of writes, one per kind, as
// Consul names them.
var applyTimers = []string{"catalog_register", "catalog_deregister", "kvs_apply", "session_apply", "txn_apply", "kvs_reap", "coordinate_batch_update", "prepared_query_apply", "acl_apply"}

// applyCounts scrapes how many writes of each kind the server's agent
// recorded (consul_kvs_apply_count, ...).
func applyCounts(t *testing.T, n *testcluster.Node) map[string]uint64 {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counts := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, timer := range applyTimers {
			if v, ok := strings.CutPrefix(sc.Text(), "consul_"+timer+"_count "); ok {
				got, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("%s count %q: %v", timer, v, err)
				}
				counts[timer] = got
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

func total(counts map[string]uint64) (n uint64) {
	for _, c := range counts {
		n += c
	}
	return n
}

// TestEveryWriteRecordsApplyMetric: every write path records one
// apply metric per Raft entry it adds, whatever endpoint made it.
func TestEveryWriteRecordsApplyMetric(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	n := c.WaitLeader(10 * time.Second)
	srv, client := n.Agent().Server(), n.API()
	// Each attempt registers a new node: a register that changes nothing
	// costs no Raft entry, so a retry of the same one would add none.
	attempt := 0
	writes := []struct {
		name, timer string
		write       func() error
	}{
		{"catalog register", "catalog_register", func() error {
			attempt++
			_, err := client.Catalog().Register(&api.CatalogRegistration{Node: fmt.Sprintf("ext%d", attempt), Address: "10.0.0.1"}, nil)
			return err
		}},
		{"kv put", "kvs_apply", func() error {
			_, err := client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil)
			return err
		}},
		{"session create", "session_apply", func() error {
			_, _, err := client.Session().Create(&api.SessionEntry{}, nil)
			return err
		}},
		{"txn", "txn_apply", func() error {
			_, _, _, err := client.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "t", Value: []byte("v")}}}, nil)
			return err
		}},
		{"prepared query create", "prepared_query_apply", func() error {
			_, _, err := client.PreparedQuery().Create(&api.PreparedQueryDefinition{Service: api.ServiceQuery{Service: "web"}}, nil)
			return err
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			// Other writes (the leader's reconcile) may land between the
			// samples: retry until a round adds as many entries as counts.
			testcluster.Eventually(t, 10*time.Second, func() error {
				before, idx := applyCounts(t, n), mustLastLogIndex(t, srv)
				if err := w.write(); err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				after := applyCounts(t, n)
				dCount, dIdx := total(after)-total(before), mustLastLogIndex(t, srv)-idx
				if dIdx == 0 || dCount != dIdx {
					return fmt.Errorf("the write added %d raft entries and %d apply observations", dIdx, dCount)
				}
				if after[w.timer] != before[w.timer]+1 {
					return fmt.Errorf("consul_%s_count went from %d to %d, want one more", w.timer, before[w.timer], after[w.timer])
				}
				return nil
			})
		})
	}
}

func mustLastLogIndex(t *testing.T, srv *server.Server) uint64 {
	t.Helper()
	idx, err := lastLogIndex(srv)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
