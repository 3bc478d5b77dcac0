package testcluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/server"
)

// TestHeartbeatLapseFailsNoRequest holds the leader's heartbeats to one
// follower back for 1.2s, as a busy host delays them, while its RPCs still
// flow: a blocking read the follower relays to the leader stays parked
// there and answers the next change, and the writes sent to the follower
// during the lapse are all applied. The follower's Raft keeps its leader
// (its heartbeat timeout is 2s here, so only the lapse is tested, not an
// election); the follower's own silence bound (750ms) is shorter than the
// lapse, and a request relayed to a leader that still answers must not
// fail on it.
func TestHeartbeatLapseFailsNoRequest(t *testing.T) {
	const lapse = 1200 * time.Millisecond
	b := testcluster.NewBridge()
	c := testcluster.New(t, testcluster.Options{Servers: 3, Bridge: b, TuneServer: func(cfg *server.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
	}})
	leader := c.WaitLeader(10 * time.Second)
	f := c.Followers(leader)[0]
	kv := f.API().KV()
	var index uint64
	testcluster.Eventually(t, 10*time.Second, func() error {
		if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("before")}, nil); err != nil {
			return err
		}
		_, qm, err := kv.Get("k", nil)
		if err != nil {
			return err
		}
		index = qm.LastIndex
		return nil
	})

	type result struct {
		pair *api.KVPair
		err  error
	}
	blocked := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pair, _, err := kv.Get("k", (&api.QueryOptions{WaitIndex: index, WaitTime: 20 * time.Second}).WithContext(ctx))
		blocked <- result{pair, err}
	}()

	b.Set(leader.ID(), f.ID(), testcluster.Fault{Blackhole: true, RaftOnly: true})
	start := time.Now()
	var writes int
	for i := 0; time.Since(start) < lapse; i++ {
		_, err := kv.Put(&api.KVPair{Key: fmt.Sprintf("lapse/%d", i), Value: []byte("x")}, nil)
		if err != nil {
			t.Errorf("write %d on the follower %v into a heartbeat lapse: %v", i, time.Since(start).Round(time.Millisecond), err)
		}
		writes++
		time.Sleep(50 * time.Millisecond) // paces the writes over the lapse
	}
	b.Heal()
	select {
	case r := <-blocked:
		t.Fatalf("blocking read returned during the lapse, before any change: %v, %v", r.pair, r.err)
	default:
	}
	if !leader.Agent().Server().IsLeader() {
		t.Logf("leader %s lost its leadership during the lapse", leader.Name)
	}

	if _, err := leader.API().KV().Put(&api.KVPair{Key: "k", Value: []byte("after")}, nil); err != nil {
		t.Fatalf("write on the leader after the lapse: %v", err)
	}
	select {
	case r := <-blocked:
		if r.err != nil {
			t.Fatalf("blocking read relayed by the follower across the lapse: %v", r.err)
		}
		if r.pair == nil || string(r.pair.Value) != "after" {
			t.Fatalf("blocking read = %v, want k = %q", r.pair, "after")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("blocking read did not answer the change within 15s")
	}
	t.Logf("%d writes on the follower during a %v heartbeat lapse", writes, lapse)
}
