package server_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// raftIndex reads one of the raft stats of /v1/agent/self.
func raftIndex(t *testing.T, n *testcluster.Node, stat string) (uint64, error) {
	t.Helper()
	self, err := n.API().Agent().Self()
	if err != nil {
		return 0, err
	}
	raw, ok := self["Stats"]["raft"].(map[string]any)[stat].(string)
	if !ok {
		return 0, fmt.Errorf("no raft stat %q in %v", stat, self["Stats"]["raft"])
	}
	return strconv.ParseUint(raw, 10, 64)
}

// TestLeaderDiskStalled: the leader sends entries to the followers while
// its own disk write runs, but while that write is stalled a new entry is
// neither acknowledged to the writer nor applied anywhere, though both
// followers hold it; once the leader's write completes, all of it happens.
func TestLeaderDiskStalled(t *testing.T) {
	var mu sync.Mutex
	gates := map[string]*server.GatedLog{}
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: func(cfg *server.Config) {
		cfg.WrapRaftLog = func(disk raft.LogStore) raft.LogStore {
			g := server.NewGatedLog(disk)
			mu.Lock()
			gates[cfg.NodeName] = g
			mu.Unlock()
			return g
		}
	}})
	leader := c.WaitLeader(10 * time.Second)
	var followers []*testcluster.Node
	for _, s := range c.Servers {
		if s != leader {
			followers = append(followers, s)
		}
	}
	if _, err := leader.API().KV().Put(&api.KVPair{Key: "before", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	gate := gates[leader.Name]
	mu.Unlock()
	gate.SetShut(true)
	defer gate.SetShut(false)

	acked := make(chan error, 1)
	go func() {
		_, err := leader.API().KV().Put(&api.KVPair{Key: "stalled", Value: []byte("2")}, nil)
		acked <- err
	}()
	// Both followers receive the entry; the leader's copy is still not on disk.
	testcluster.Eventually(t, 10*time.Second, func() error {
		want, err := raftIndex(t, leader, "last_log_index")
		if err != nil {
			return err
		}
		for _, f := range followers {
			got, err := raftIndex(t, f, "last_log_index")
			if err != nil {
				return err
			}
			if got < want {
				return fmt.Errorf("%s holds the log up to %d, the leader up to %d", f.Name, got, want)
			}
		}
		return nil
	})
	// The leader counts its queued copy: the entry is committed in Raft's
	// eyes, which is when, without the durable index, it would be applied.
	testcluster.Eventually(t, 10*time.Second, func() error {
		last, err := raftIndex(t, leader, "last_log_index")
		if err != nil {
			return err
		}
		commit, err := raftIndex(t, leader, "commit_index")
		if err != nil {
			return err
		}
		if commit < last {
			return fmt.Errorf("leader commit index %d, last index %d", commit, last)
		}
		return nil
	})
	// Followers would hear of the commit within raft's commit timeout
	// (10ms); watch for half a second that nobody answers or applies it.
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		select {
		case err := <-acked:
			t.Fatalf("the write was answered (%v) while the leader's disk write was stalled", err)
		default:
		}
		for _, n := range c.Servers {
			p, _, err := n.API().KV().Get("stalled", &api.QueryOptions{AllowStale: true})
			if err != nil {
				t.Fatal(err)
			}
			if p != nil {
				t.Fatalf("%s applied the write while the leader's disk write was stalled", n.Name)
			}
		}
	}

	gate.SetShut(false)
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("write after the leader's disk resumed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write was not answered after the leader's disk resumed")
	}
	for _, n := range c.Servers {
		testcluster.Eventually(t, 10*time.Second, func() error {
			p, _, err := n.API().KV().Get("stalled", &api.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("%s does not have the write yet", n.Name)
			}
			return nil
		})
	}
}
