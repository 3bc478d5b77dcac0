package server_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// TestReadsAfterFullRestartNeverGoBack: a key is written, snapshotted,
// overwritten, and every server is killed and restarted. A restarted
// server's state is its snapshot until a leader tells it what was
// committed since, so a new leader must not answer default or consistent
// reads before its barrier has applied that: readers hammering every
// server through the restart never see the overwritten value nor a 404 of
// the acknowledged key (errors are fine: the client retries them).
func TestReadsAfterFullRestartNeverGoBack(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: defaultRaftTimings})
	leader := c.WaitLeader(10 * time.Second)
	kv := leader.API().KV()
	put := func(v string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte(v)}, nil); err != nil {
			t.Fatalf("put %s: %v", v, err)
		}
		for _, n := range c.Servers {
			testcluster.Eventually(t, 10*time.Second, func() error {
				p, _, err := n.API().KV().Get("k", &api.QueryOptions{AllowStale: true})
				if err != nil || p == nil || string(p.Value) != v {
					return fmt.Errorf("%s has %v (%v), want %s", n.Name, p, err, v)
				}
				return nil
			})
		}
	}
	put("old")
	for _, n := range c.Servers {
		if err := n.Agent().Server().Snapshot(); err != nil {
			t.Fatalf("snapshot %s: %v", n.Name, err)
		}
	}
	// Entries between the snapshot and the overwrite make a restarted
	// server take a while to apply its log up to it: the window in which
	// a new leader that does not wait for its barrier answers "old".
	var fill sync.WaitGroup
	filler := make([]byte, 8<<10)
	for w := range 16 {
		fill.Add(1)
		go func() {
			defer fill.Done()
			for i := range 100 {
				// A leader change on a loaded machine fails a write
				// with a 503: write it again.
				for deadline := time.Now().Add(10 * time.Second); ; {
					_, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("fill/%d/%d", w, i), Value: filler}, nil)
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("fill: %v", err)
						return
					}
					time.Sleep(50 * time.Millisecond) // a retry interval, not synchronisation
				}
			}
		}()
	}
	fill.Wait()
	put("new")

	for _, n := range c.Servers {
		n.Kill()
	}
	var (
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		mu         sync.Mutex
		violations = map[string]int{} // what was wrong: how often
		answered   atomic.Int64
	)
	violate := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		violations[fmt.Sprintf(format, args...)]++
	}
	for _, n := range c.Servers {
		client := n.API().KV()
		for _, mode := range []string{"default", "consistent"} {
			opts := &api.QueryOptions{RequireConsistent: mode == "consistent"}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					p, _, err := client.Get("k", opts)
					if err != nil {
						// Down, or refusing until it is ready: both fine.
						time.Sleep(5 * time.Millisecond) // a retry interval, not synchronisation
						continue
					}
					answered.Add(1)
					switch {
					case p == nil:
						violate("%s %s read: 404 for an acknowledged key", n.Name, mode)
					case string(p.Value) != "new":
						violate("%s %s read: %q, overwritten", n.Name, mode, p.Value)
					}
				}
			}()
		}
	}
	for _, n := range c.Servers {
		n.Restart()
	}
	c.WaitLeader(15 * time.Second)
	// Keep reading until the new leader answers (it refuses until it has
	// applied its log, which takes a while on a slow machine or under
	// -race), and for a while after, when the window was.
	testcluster.Eventually(t, 60*time.Second, func() error {
		if n := answered.Load(); n < 20 {
			return fmt.Errorf("%d reads answered since the restart", n)
		}
		return nil
	})
	time.Sleep(time.Second) // the length of the observation, not synchronisation
	close(stop)
	wg.Wait()
	for v, times := range violations {
		t.Errorf("%s (%d times)", v, times)
	}
}

// TestStaleReadWithoutLeaderSaysHowOld: a server restarted alone (no
// quorum, so no leader) answers ?stale reads from its snapshot, saying
// that it knows no leader and that its state is at least as old as its
// start (X-Consul-LastContact), not 0 as if it were current.
func TestStaleReadWithoutLeaderSaysHowOld(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Servers: 3})
	c.WaitLeader(10 * time.Second)
	for _, n := range c.Servers {
		n.Kill()
	}
	lone := c.Servers[0]
	lone.Restart()
	restarted := time.Now()
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, meta, err := lone.API().KV().Get("k", &api.QueryOptions{AllowStale: true})
		if err != nil {
			return err
		}
		if meta.KnownLeader {
			t.Fatalf("a server alone out of three reports a known leader")
		}
		// Its state is as old as its start, at least.
		if since := time.Since(restarted); meta.LastContact < 100*time.Millisecond && since > 200*time.Millisecond {
			t.Fatalf("stale read %v after the restart reports LastContact %v", since, meta.LastContact)
		}
		if meta.LastContact < 100*time.Millisecond {
			return fmt.Errorf("LastContact %v, waiting for 100ms since the restart", meta.LastContact)
		}
		return nil
	})
}
