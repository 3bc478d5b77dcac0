package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meridian/meridian/rpc"
)

// errLeaderSilent cancels the requests a follower forwards to a leader it
// no longer hears from.
var errLeaderSilent = errors.New("leader silent")

// leaderContact fails the requests a follower has in flight to its leader
// once it has not heard from that leader for leaderSilence, and closes its
// session to the leader: without it a request forwarded over a connection
// that a partition cut waits for its caller's deadline, long after Raft
// itself gave the leader up.
type leaderContact struct {
	mu     sync.Mutex
	ctx    context.Context // cancelled, and replaced, when the leader goes silent
	cancel context.CancelCauseFunc
	used   bool // a request watches ctx: replace it when the leader goes silent
}

func newLeaderContact() *leaderContact {
	c := &leaderContact{}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return c
}

// watch is the context that is cancelled the next time the leader goes
// silent.
func (c *leaderContact) watch() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = true
	return c.ctx
}

// silenced cancels the requests watching, if any.
func (c *leaderContact) silenced() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.used {
		return
	}
	c.cancel(errLeaderSilent)
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.used = false
}

// leaderSilence is how long a follower goes without hearing from its
// leader before the requests it forwards there fail with ErrNoLeader. The
// leader heartbeats every HeartbeatTimeout/10 and steps down when it has
// not reached a quorum for its lease, so a leader silent for a
// HeartbeatTimeout is gone or cut off from here; the bound is at most
// maxLeaderHold so that a cut-off follower answers within 1s. The cost: a
// follower starved of CPU for that long fails the requests it forwards,
// which their clients retry.
func (s *Server) leaderSilence() time.Duration {
	return min(s.cfg.HeartbeatTimeout, maxLeaderHold)
}

// silentFor reports how long this follower has not heard from a leader,
// when that is longer than leaderSilence.
func (s *Server) silentFor() (time.Duration, bool) {
	if s.IsLeader() {
		return 0, false
	}
	d := time.Since(s.raft.LastContact())
	return d, d > s.leaderSilence()
}

// watchLeaderContact checks the leader's last contact every 50ms and fails
// the forwarded requests in flight when it is silent.
func (s *Server) watchLeaderContact() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if _, silent := s.silentFor(); silent {
			s.contact.silenced()
		}
	}
}

// callLeader forwards a request to leader, failing with ErrNoLeader at
// once if this server has not heard from a leader for leaderSilence, or
// as soon as that happens while the request is in flight.
func (s *Server) callLeader(ctx context.Context, leader, method string, args, reply any) error {
	if d, silent := s.silentFor(); silent {
		return fmt.Errorf("%w: leader %s not heard from for %v", rpc.ErrNoLeader, leader, d.Round(time.Millisecond))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.contact.watch(), func() {
		cancel(errLeaderSilent)
		// A write blocked on a connection that carries nothing returns
		// only when the connection closes, not when its context ends.
		s.pool.Forget(leader)
	})
	defer stop()
	err := s.pool.Call(ctx, leader, method, args, reply)
	if err != nil && errors.Is(context.Cause(ctx), errLeaderSilent) {
		return fmt.Errorf("%w: leader %s went silent during the request, which may or may not have been applied", rpc.ErrNoLeader, leader)
	}
	return err
}
