package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
)

// partitioned is a 3-server DC on a bridge with the leader cut from both
// followers.
type partitioned struct {
	c         *testcluster.Cluster
	b         *testcluster.Bridge
	old       *testcluster.Node
	majority  []*testcluster.Node
	cutAt     time.Time
	steppedIn time.Duration // cut to old leader stepping down
	electedIn time.Duration // cut to a leader on the majority side
	newLeader *testcluster.Node
}

// cutLeader partitions the leader of c from its followers and waits until
// it steps down and the majority elects another.
func cutLeader(t *testing.T, c *testcluster.Cluster, b *testcluster.Bridge) *partitioned {
	t.Helper()
	p := &partitioned{c: c, b: b, old: c.WaitLeader(10 * time.Second)}
	p.majority = c.Followers(p.old)
	p.cutAt = time.Now()
	b.Partition(testcluster.IDs(p.old), testcluster.IDs(p.majority...))
	testcluster.Eventually(t, 10*time.Second, func() error {
		if p.steppedIn == 0 && !p.old.Agent().Server().IsLeader() {
			p.steppedIn = time.Since(p.cutAt)
		}
		if p.newLeader == nil {
			for _, n := range p.majority {
				if n.Agent().Server().IsLeader() {
					p.newLeader, p.electedIn = n, time.Since(p.cutAt)
				}
			}
		}
		switch {
		case p.steppedIn == 0:
			return fmt.Errorf("old leader %s still leads", p.old.Name)
		case p.newLeader == nil:
			return errors.New("no leader on the majority side")
		}
		return nil
	})
	return p
}

// heal ends the partition and waits until every server follows one leader.
func (p *partitioned) heal(t *testing.T) *testcluster.Node {
	t.Helper()
	p.b.Heal()
	return p.c.WaitLeader(10 * time.Second)
}

// timed runs fn with a 5s context and reports how long it took.
func timed(fn func(ctx context.Context) error) (time.Duration, error) {
	return timedWithin(5*time.Second, fn)
}

// timedWithin runs fn with a context of timeout and reports how long it
// took.
func timedWithin(timeout time.Duration, fn func(ctx context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	return time.Since(start), err
}

// TestPartitionLeaderIsolated cuts the leader of a 3-server DC from both
// followers: it steps down within its lease, the majority elects a leader,
// the minority refuses writes and consistent reads at once, serves stale
// reads that say how stale they are, and on heal what it took while cut
// is gone and every acknowledged write is there.
func TestPartitionLeaderIsolated(t *testing.T) {
	b := testcluster.NewBridge()
	c := testcluster.New(t, testcluster.Options{Servers: 3, Bridge: b})
	// A loaded machine may see an election right after the start: the
	// write before the cut is retried until acknowledged.
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := c.WaitLeader(10*time.Second).API().KV().Put(&api.KVPair{Key: "k", Value: []byte("before")}, nil)
		return err
	})

	p := cutLeader(t, c, b)
	t.Logf("old leader stepped down %v after the cut, new leader %s after %v", p.steppedIn, p.newLeader.Name, p.electedIn)
	wait.Figure(t, p.steppedIn <= time.Second, "old leader stepped down %v after the cut, want within about its lease (250ms), 1s at most", p.steppedIn)
	wait.Figure(t, p.electedIn <= 3*time.Second, "majority elected a leader %v after the cut, want within 2s (3s on a loaded machine)", p.electedIn)

	// The majority takes writes. Its two servers need each other for a
	// quorum, and beside CPU burners the new leader lost its leadership
	// while committing the first write: it is retried (the same value, so
	// a retry of one that was applied changes nothing).
	kvNew := p.newLeader.API().KV()
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := kvNew.Put(&api.KVPair{Key: "k", Value: []byte("majority")}, nil)
		return err
	})

	// The minority refuses writes and consistent reads within 1s.
	minority := p.old.API().KV()
	took, err := timed(func(ctx context.Context) error {
		_, err := minority.Put(&api.KVPair{Key: "k", Value: []byte("minority")}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	t.Logf("minority write: %v after %v", err, took)
	if err == nil {
		t.Errorf("Put on the minority = nil after %v, want an error", took)
	}
	wait.Figure(t, took <= time.Second, "Put on the minority answered after %v, want within 1s", took)
	took, err = timed(func(ctx context.Context) error {
		_, _, err := minority.Get("k", (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
		return err
	})
	t.Logf("minority consistent read: %v after %v", err, took)
	if err == nil {
		t.Errorf("consistent Get on the minority = nil after %v, want an error", took)
	}
	wait.Figure(t, took <= time.Second, "consistent Get on the minority answered after %v, want within 1s", took)

	// Stale reads are served, saying no leader is known and how long
	// since it was heard from, which grows.
	var first time.Duration
	for i := range 2 {
		pair, meta, err := minority.Get("k", &api.QueryOptions{AllowStale: true})
		if err != nil {
			t.Fatalf("stale Get on the minority: %v", err)
		}
		if pair == nil || string(pair.Value) != "before" {
			t.Errorf("stale Get on the minority = %v, want the value from before the cut", pair)
		}
		if meta.KnownLeader {
			t.Errorf("stale Get on the minority: X-Consul-KnownLeader true, want false")
		}
		if i == 0 {
			first = meta.LastContact
			time.Sleep(300 * time.Millisecond) // the wait is what is measured
			continue
		}
		if meta.LastContact < first+200*time.Millisecond {
			t.Errorf("X-Consul-LastContact went from %v to %v over 300ms, want it growing", first, meta.LastContact)
		}
	}

	leader := p.heal(t)
	if leader == p.old {
		t.Logf("old leader %s won again after the heal", p.old.Name)
	}
	// Every server now has the majority's value, not the minority's.
	for _, n := range c.Servers {
		kv := n.API().KV()
		testcluster.Eventually(t, 10*time.Second, func() error {
			pair, _, err := kv.Get("k", &api.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			if pair == nil || string(pair.Value) != "majority" {
				return fmt.Errorf("%s has k = %v, want %q", n.Name, pair, "majority")
			}
			return nil
		})
	}
}

// TestPartitionFollowerCutFromLeader cuts one follower from the leader
// only (the two followers still reach each other, the leader keeps its
// quorum): a write sent to that follower, which it forwards to a leader it
// still believes in over a connection that now carries nothing, is
// answered with an error within 1s, and on heal the follower forwards
// again.
func TestPartitionFollowerCutFromLeader(t *testing.T) {
	b := testcluster.NewBridge()
	c := testcluster.New(t, testcluster.Options{Servers: 3, Bridge: b})
	leader := c.WaitLeader(10 * time.Second)
	cut := c.Followers(leader)[0]
	kv := cut.API().KV()
	// The follower's connection to the leader is open before the cut.
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("before")}, nil)
		return err
	})

	b.Cut(cut.ID(), leader.ID())
	took, err := timed(func(ctx context.Context) error {
		_, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("cut")}, (&api.WriteOptions{}).WithContext(ctx))
		return err
	})
	t.Logf("write on the follower cut from its leader: %v after %v", err, took)
	if err == nil {
		t.Errorf("Put on the cut follower = nil after %v, want an error", took)
	}
	wait.Figure(t, took <= time.Second, "Put on the cut follower answered after %v, want within 1s", took)

	b.Heal()
	c.WaitLeader(10 * time.Second)
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("healed")}, nil)
		return err
	})
}
