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
		defaultRaftTimings(cfg)
		cfg.WrapRaftLog = func(disk raft.LogStore) raft.LogStore {
			g := server.NewGatedLog(disk)
			mu.Lock()
			gates[cfg.NodeName] = g
			mu.Unlock()
			return g
		}
	}})
	leader := c.WaitLeader(10 * time.Second)
	followers := c.Followers(leader)
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

// TestLeaderCompactsWhileWriting: snapshots taken on the leader while
// writers are busy cut the head of its log (only 8 entries trail) while
// new entries are queued, a follower that was down meanwhile catches up,
// and after every server restarts, every acknowledged write is there.
func TestLeaderCompactsWhileWriting(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: func(cfg *server.Config) {
		defaultRaftTimings(cfg)
		cfg.TrailingLogs = 8
		cfg.SnapshotThreshold = 1 << 30 // only the snapshots the test takes
	}})
	leader := c.WaitLeader(10 * time.Second)
	down := c.Followers(leader)[0]
	down.Kill()
	kv := leader.API().KV()
	writers := testcluster.StartWriters(t, 4, func(w, i int) (string, error) {
		key := fmt.Sprintf("compact/%d/%d", w, i)
		_, err := kv.Put(&api.KVPair{Key: key, Value: []byte(key)}, nil)
		return key, err
	})
	for round := 1; round <= 3; round++ {
		writers.WaitAcked(t, round*150, 20*time.Second)
		if err := leader.Agent().Server().Snapshot(); err != nil {
			t.Fatalf("snapshot %d on the leader: %v", round, err)
		}
	}
	snapped, err := raftIndex(t, leader, "last_snapshot_index")
	if err != nil || snapped == 0 {
		t.Fatalf("leader's last snapshot index = %d, %v", snapped, err)
	}
	writers.WaitAcked(t, writers.Count()+100, 20*time.Second)
	acked := writers.Stop()

	target, err := raftIndex(t, leader, "applied_index")
	if err != nil {
		t.Fatal(err)
	}
	// Its log ends before the first entry the leader kept. (raft-wal still
	// reads truncated entries of its open segment, so raft may send those
	// rather than the snapshot; either way it must catch up.)
	down.Restart()
	testcluster.Eventually(t, 20*time.Second, func() error {
		applied, err := raftIndex(t, down, "applied_index")
		if err != nil {
			return err
		}
		if applied < target {
			return fmt.Errorf("%s applied up to %d, the leader up to %d", down.Name, applied, target)
		}
		return nil
	})
	for _, s := range c.Servers {
		s.Kill()
	}
	for _, s := range c.Servers {
		s.Restart()
	}
	c.WaitLeader(20 * time.Second)
	testcluster.Eventually(t, 20*time.Second, func() error {
		return testcluster.KeysAcked(c.Servers[0].API().KV(), "compact/", acked)
	})
	t.Logf("%d acknowledged writes, 3 snapshots on the leader (last at %d)", len(acked), snapped)
}
