package server

import (
	"context"
	"fmt"
	"time"

	"github.com/meridian/meridian/rpc"
)

// readiness says for which Raft term this server, as leader, has applied
// its barrier: from then on its state store holds everything committed
// before it led, and it may answer default and consistent reads (and check
// writes against its state). Until then a new leader's store can still be
// the one it restored from its last snapshot, older than what clients were
// told was written. A readiness is never changed: a new one replaces it,
// and closing changed wakes whoever waits on the old one.
type readiness struct {
	term    uint64 // 0: not ready in any term
	changed chan struct{}
}

// readyIn reports whether r is the readiness of term.
func (r *readiness) readyIn(term uint64) bool { return r.term != 0 && r.term == term }

// isReady reports whether this server leads and has applied its barrier in
// its current term.
func (s *Server) isReady() bool {
	return s.ready.Load().readyIn(s.raft.CurrentTerm()) && s.IsLeader()
}

// setReady records that the barrier of term was applied (0: leadership
// ended) and wakes the waiters.
func (s *Server) setReady(term uint64) {
	old := s.ready.Swap(&readiness{term: term, changed: make(chan struct{})})
	if old != nil {
		close(old.changed)
	}
}

// waitReady returns once this server leads with its barrier applied in its
// current term, waiting at most readyWait (and no longer than ctx or the
// server's life); then it answers rpc.ErrNoLeader, which a client retries.
// Past the first moments of a term it is two atomic loads.
func (s *Server) waitReady(ctx context.Context) error {
	var timeout <-chan time.Time
	for {
		r := s.ready.Load()
		if r.readyIn(s.raft.CurrentTerm()) && s.IsLeader() {
			return nil
		}
		if !s.IsLeader() {
			return fmt.Errorf("%w: leadership lost", rpc.ErrNoLeader)
		}
		if timeout == nil {
			t := time.NewTimer(s.readyWait())
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-r.changed:
		case <-timeout:
			return fmt.Errorf("%w: the new leader has not applied the log of its predecessors yet", rpc.ErrNoLeader)
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrShutdown
		}
	}
}

// readyWait is how long a request waits for a new leader to be ready, as
// long as a request waits for an election (forwardToLeader).
func (s *Server) readyWait() time.Duration { return s.cfg.ElectionTimeout * 4 }
