package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/meridian/meridian/rpc"
)

// ErrShutdown is what a call waiting on Raft (a write, a consistent read)
// answers when the server shuts down under it; a write may or may not have
// been committed. It wraps rpc.ErrNoLeader, so that it travels coded to
// callers in other processes and the HTTP API answers 503.
var ErrShutdown = fmt.Errorf("server shutting down: %w", rpc.ErrNoLeader)

// apply is the one way the server writes: it commits a command through
// Raft and returns the index it was applied at and the FSM's answer (an
// answer that is an error is returned as the error). It returns once the
// write is applied, when ctx ends, or when the server shuts down
// (ErrShutdown), whichever comes first, and records the time in the
// write's timer (consul_kvs_apply, consul_catalog_register, ...). A write abandoned by ctx or by the
// shutdown may still be committed.
func (s *Server) apply(ctx context.Context, t msgType, cmd any) (uint64, any, error) {
	buf, err := encodeCommand(t, cmd)
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	future := s.raft.Apply(buf, s.cfg.ApplyTimeout)
	err = s.await(ctx, future)
	s.metrics.applied(t, start)
	if err != nil {
		return 0, nil, fmt.Errorf("apply: %w", err)
	}
	resp := future.Response()
	if err, ok := resp.(error); ok && err != nil {
		return 0, nil, err
	}
	return future.Index(), resp, nil
}

// await waits for a Raft future, bounded by ctx and by the server's
// shutdown, and turns raft's errors into the server's: leadership errors
// into rpc.ErrNoLeader, raft's shutdown into ErrShutdown. The bound is not
// only for callers in a hurry: raft never answers an applied entry's future
// when it stops with the entry still queued for the FSM, so a wait on the
// future alone can last forever. The goroutine that waits on it ends when
// raft answers; one whose future raft dropped stays parked on it.
func (s *Server) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return raftError(err)
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	// An answer that came at the same time wins over the way out.
	select {
	case err := <-done:
		return raftError(err)
	default:
	}
	if s.ctx.Err() != nil {
		return ErrShutdown
	}
	return ctx.Err()
}

// raftError turns raft's errors into the ones the server answers.
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrShutdown, err)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", rpc.ErrNoLeader, err)
	}
	return err
}
