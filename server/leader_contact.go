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
//
// Hearing from the leader is its heartbeats (Raft's LastContact) or its
// answer to a probe: a follower whose heartbeats are late (a busy host
// delays them) asks the leader directly before it gives up, so that a
// leader that still answers never has the requests relayed to it failed,
// a blocking read parked there for minutes included. A follower that was
// itself not running (its watcher woke late) counts from when it woke:
// heartbeats waiting in its socket are not silence.
type leaderContact struct {
	mu       sync.Mutex
	ctx      context.Context // cancelled, and replaced, when the leader goes silent
	cancel   context.CancelCauseFunc
	used     bool      // a request watches ctx: replace it when the leader goes silent
	silent   bool      // the watcher found the leader silent at its last look
	answered time.Time // the leader last answered a probe
	woke     time.Time // the watcher last woke after being starved of CPU
	probing  bool      // a probe is in flight
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

// silenced marks the leader silent and cancels the requests watching, if
// any.
func (c *leaderContact) silenced() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.silent = true
	if !c.used {
		return
	}
	c.cancel(errLeaderSilent)
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.used = false
}

// heard marks the leader heard from, or this server the leader.
func (c *leaderContact) heard() {
	c.mu.Lock()
	c.silent = false
	c.mu.Unlock()
}

// isSilent reports whether the watcher found the leader silent.
func (c *leaderContact) isSilent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.silent
}

// since is the latest of raft's last contact, the leader's last answer to a
// probe and the watcher's last wake-up after a stall.
func (c *leaderContact) since(raft time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return latest(raft, c.answered, c.woke)
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// startProbe reports whether a probe may start, none being in flight.
func (c *leaderContact) startProbe() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probing {
		return false
	}
	c.probing = true
	return true
}

// probed ends a probe; ok says the leader answered, at.
func (c *leaderContact) probed(ok bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing = false
	if ok {
		c.answered = at
	}
}

// wokeAt records that the watcher was starved of CPU until at.
func (c *leaderContact) wokeAt(at time.Time) {
	c.mu.Lock()
	c.woke = at
	c.mu.Unlock()
}

// leaderSilence is how long a follower goes without hearing from its
// leader before the requests it forwards there fail with ErrNoLeader. The
// leader heartbeats every HeartbeatTimeout/10 and steps down when it has
// not reached a quorum for its lease, so a leader silent for a
// HeartbeatTimeout, that has not answered the probes sent over its last
// two thirds, is gone or cut off from here; the bound is at most
// maxLeaderHold so that a cut-off follower answers within 1s. The cost: a
// follower whose leader is starved of CPU for that long, too starved to
// answer a probe, fails the requests it forwards, which their clients
// retry.
func (s *Server) leaderSilence() time.Duration {
	return min(s.cfg.HeartbeatTimeout, maxLeaderHold)
}

// watchTick is how often the watcher looks at the leader's last contact.
const watchTick = 50 * time.Millisecond

// silentFor reports how long this follower has not heard from a leader,
// when the watcher found it silent and it still is.
func (s *Server) silentFor() (time.Duration, bool) {
	if s.IsLeader() || !s.contact.isSilent() {
		return 0, false
	}
	d := time.Since(s.contact.since(s.raft.LastContact()))
	return d, d > s.leaderSilence()
}

// watchLeaderContact checks the leader's last contact every watchTick:
// when heartbeats are late by a third of the silence bound it probes the
// leader, and when it has heard nothing for the whole bound it fails the
// forwarded requests in flight. A tick that comes late by half the bound
// means this process did not run (a busy host): it counts as contact, so
// that heartbeats queued meanwhile get their turn to be read.
func (s *Server) watchLeaderContact() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			// The time of the receive, not the tick's: a starved
			// goroutine receives an old tick late.
			now := time.Now()
			if now.Sub(last) > s.leaderSilence()/2 {
				s.contact.wokeAt(now)
			}
			last = now
		}
		if s.IsLeader() {
			s.contact.heard()
			continue
		}
		d := time.Since(s.contact.since(s.raft.LastContact()))
		if d > s.leaderSilence() {
			s.contact.silenced()
		} else {
			s.contact.heard()
		}
		// A leader heartbeats every HeartbeatTimeout/10 to /5: a third of
		// the bound is late, and leaves the probe time to answer on a
		// busy host.
		if leader := s.Leader(); d > s.leaderSilence()/3 && leader != "" && leader != s.cfg.Advertise && s.contact.startProbe() {
			s.goFunc(func() { s.probeLeader(leader) })
		}
	}
}

// probeLeader asks leader who leads, bounded by the silence bound, and
// counts an answer naming itself as contact. A probe over a cut path ends
// when its session is closed (callLeader's requests close it once the
// leader is found silent), or at the session's write timeout.
func (s *Server) probeLeader(leader string) {
	ctx, cancel := context.WithTimeout(s.ctx, s.leaderSilence())
	defer cancel()
	var reply string
	err := s.pool.Call(ctx, leader, rpc.MethodStatusLeader, &rpc.Query[struct{}]{}, &reply)
	s.contact.probed(err == nil && reply == leader, time.Now())
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
