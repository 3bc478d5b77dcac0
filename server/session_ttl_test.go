package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
)

// sessionTTL is the shortest TTL a session may have; the leader destroys
// an un-renewed one after twice this.
const sessionTTL = 10 * time.Second

// waitSessionGone waits for session id to disappear, within a bound that
// leaves slack over the server's TTL*2, and answers when it went.
func waitSessionGone(t *testing.T, s *api.Session, id string, timeout time.Duration) time.Time {
	t.Helper()
	testcluster.Eventually(t, timeout, func() error {
		e, _, err := s.Info(id, nil)
		if err != nil {
			return err
		}
		if e != nil {
			return fmt.Errorf("session %s still exists", id)
		}
		return nil
	})
	return time.Now()
}

func TestSessionTTLExpiresUnrenewedAndKeepsRenewed(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true})
	client := c.Servers[0].API()
	sess, kv := client.Session(), client.KV()

	idle, _, err := sess.Create(&api.SessionEntry{Name: "idle", TTL: sessionTTL.String(), LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("create idle session: %v", err)
	}
	created := time.Now()
	kept, _, err := sess.Create(&api.SessionEntry{Name: "kept", TTL: sessionTTL.String()}, nil)
	if err != nil {
		t.Fatalf("create renewed session: %v", err)
	}
	stopRenew := make(chan struct{})
	renewDone := make(chan error, 1)
	go func() { renewDone <- sess.RenewPeriodic(sessionTTL.String(), kept, nil, stopRenew) }()
	t.Cleanup(func() {
		close(stopRenew)
		<-renewDone
	})

	if ok, _, err := kv.Acquire(&api.KVPair{Key: "ttl/lock", Session: idle}, nil); err != nil || !ok {
		t.Fatalf("Acquire(ttl/lock, idle) = %v, %v", ok, err)
	}
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "ttl/kept", Session: kept}, nil); err != nil || !ok {
		t.Fatalf("Acquire(ttl/kept, kept) = %v, %v", ok, err)
	}

	gone := waitSessionGone(t, sess, idle, 2*sessionTTL+10*time.Second)
	if d := gone.Sub(created); d < sessionTTL {
		t.Errorf("idle session destroyed after %v, want no sooner than its TTL %v", d, sessionTTL)
	}
	p, _, err := kv.Get("ttl/lock", nil)
	if err != nil || p == nil || p.Session != "" {
		t.Errorf("ttl/lock after its session expired = %+v, %v; want kept and released", p, err)
	}

	e, _, err := sess.Info(kept, nil)
	if err != nil || e == nil {
		t.Errorf("renewed session after %v = %+v, %v; want alive", time.Since(created), e, err)
	}
	p, _, err = kv.Get("ttl/kept", nil)
	if err != nil || p == nil || p.Session != kept {
		t.Errorf("ttl/kept = %+v, %v; want still held by the renewed session", p, err)
	}
}

func TestSessionTTLReArmedByNewLeader(t *testing.T) {
	t.Parallel()
	// On disk: testcluster's InMemory means dev mode, which forces
	// Bootstrap and so cannot join three servers. Production Raft
	// timings: with the fast test ones (a 100ms lease) the two servers
	// left after the kill lost and won leadership again every second or
	// so on a loaded machine, and each new leader arms every session's
	// TTL afresh (it cannot know when the last renewal was), so the
	// session outlived the wait.
	c := testcluster.New(t, testcluster.Options{Servers: 3, TuneServer: defaultRaftTimings})
	leader := c.WaitLeader(10 * time.Second)
	follower := c.Followers(leader)[0]
	sess := follower.API().Session()
	// A session binds to its node, which the leader registers in the
	// catalog soon after the node joins: retry until it has.
	var id string
	testcluster.Eventually(t, 5*time.Second, func() error {
		var err error
		id, _, err = sess.Create(&api.SessionEntry{Name: "orphan", TTL: sessionTTL.String(), NodeChecks: []string{}}, nil)
		return err
	})
	// The follower must have the session before the leader dies.
	testcluster.Eventually(t, 5*time.Second, func() error {
		e, _, err := sess.Info(id, &api.QueryOptions{AllowStale: true})
		if err != nil || e == nil {
			return fmt.Errorf("follower lacks session %s: %v", id, err)
		}
		return nil
	})

	leader.Kill()
	newLeader := c.WaitLeader(15 * time.Second)
	elected := time.Now()
	if newLeader == leader {
		t.Fatalf("leader %s still leads after it was killed", leader.Name)
	}
	// Each leader arms the TTL afresh: an election during the wait (a
	// loaded machine may hold one) starts it again, so the wait is
	// 2*TTL plus slack after the last election, for up to three of them.
	term := func() (highest uint64) {
		for _, n := range c.Servers {
			if n.Running() {
				highest = max(highest, raftTerm(t, n.Agent().Server()))
			}
		}
		return highest
	}
	lastTerm, elections := term(), 0
	deadline := elected.Add(2*sessionTTL + 10*time.Second)
	for {
		e, _, err := follower.API().Session().Info(id, nil)
		if err == nil && e == nil {
			break
		}
		if now := term(); now != lastTerm && elections < 3 {
			lastTerm, elections, elected = now, elections+1, time.Now()
			deadline = elected.Add(2*sessionTTL + 10*time.Second)
			t.Logf("an election during the wait (term %d): the new leader arms the TTL afresh", now)
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still exists %v after the last election (%d during the wait): %v", id, time.Since(elected).Round(time.Millisecond), elections, err)
		}
		time.Sleep(100 * time.Millisecond) // a retry interval, not synchronisation
	}
	t.Logf("new leader %s expired the session %v after the last election (%d during the wait)", newLeader.Name, time.Since(elected).Round(time.Millisecond), elections)
}
