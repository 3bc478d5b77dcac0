package server

import (
	"context"
	"sync"
	"time"

	"github.com/meridian/meridian/kvstore"
)

// sessionTTLMultiplier stretches a session's TTL before the leader expires
// it, as Consul does: the TTL is a lower bound on invalidation, and the
// slack covers a renewal in flight during a leader change.
const sessionTTLMultiplier = 2

// Leader duties of the KV store besides session TTLs.
const (
	// kvReapInterval is how often the leader reaps lock delays that are
	// over and tombstones older than tombstoneTTL.
	kvReapInterval = time.Minute
	// tombstoneTTL is how long a delete's tombstone is kept so that a
	// blocking prefix query still sees the index move (Consul's
	// tombstone_ttl default).
	tombstoneTTL = 15 * time.Minute
)

// sessionTimers are the leader's TTL timers, one per session with a TTL.
// Only the leader arms them; expiry destroys the session through Raft.
// The zero value is not usable; newSessionTimers makes one.
type sessionTimers struct {
	mu     sync.Mutex
	timers map[string]*time.Timer
	// expire is what a timer runs; nil while this server does not lead,
	// so reset and clear are no-ops on followers.
	expire func(id string)
}

func newSessionTimers() *sessionTimers {
	return &sessionTimers{timers: map[string]*time.Timer{}}
}

// reset (re)arms the timer of session id to fire after ttl times the
// multiplier. It does nothing when this server does not lead.
func (t *sessionTimers) reset(id string, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expire == nil {
		return
	}
	if old, ok := t.timers[id]; ok {
		old.Stop()
	}
	expire := t.expire
	t.timers[id] = time.AfterFunc(ttl*sessionTTLMultiplier, func() { expire(id) })
}

// clear stops and forgets the timer of session id.
func (t *sessionTimers) clear(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.timers[id]; ok {
		old.Stop()
		delete(t.timers, id)
	}
}

// start enables the timers with expire as what they run.
func (t *sessionTimers) start(expire func(id string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire = expire
}

// stop disarms every timer and disables new ones.
func (t *sessionTimers) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tm := range t.timers {
		tm.Stop()
		delete(t.timers, id)
	}
	t.expire = nil
}

// startKVLeader starts the KV store's leader duties: it arms a TTL timer
// for every session that has a TTL (a new leader cannot know when the old
// one last saw a renewal, so each gets a full TTL), and reaps lock delays
// and old tombstones every kvReapInterval. The returned function stops
// them and waits for them to end.
func (s *Server) startKVLeader(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	timers := s.fsm.sessionTTL
	timers.start(func(id string) {
		// A timer that fired as leadership ended finds ctx done; one
		// already past this check ends with raft's answer, not-leader.
		if ctx.Err() != nil {
			return
		}
		s.expireSession(ctx, id)
	})
	tx, _ := s.readTxn()
	_, sessions, err := kvstore.SessionList(tx, nil)
	tx.Abort()
	if err != nil {
		s.logger.Error("list sessions to arm their ttl", "error", err)
	}
	for _, sess := range sessions {
		if ttl, _ := time.ParseDuration(sess.TTL); ttl > 0 {
			timers.reset(sess.ID, ttl)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.kvReapLoop(ctx)
	}()
	return func() {
		timers.stop()
		cancel()
		wg.Wait()
	}
}

// expireSession destroys a session whose TTL lapsed.
func (s *Server) expireSession(ctx context.Context, id string) {
	s.fsm.sessionTTL.clear(id)
	req := kvstore.SessionRequest{Op: kvstore.SessionOpDestroy, Session: kvstore.Session{ID: id}, Now: time.Now().UnixNano()}
	if _, _, err := s.apply(ctx, msgSession, &req); err != nil {
		s.logger.Warn("expire session", "session", id, "error", err)
		return
	}
	s.logger.Info("session ttl expired", "session", id)
}

// kvReapLoop periodically reaps lock delays that are over and tombstones
// older than tombstoneTTL, judged by the applied index sampled at each tick.
func (s *Server) kvReapLoop(ctx context.Context) {
	type sample struct {
		at    time.Time
		index uint64
	}
	var samples []sample
	tick := time.NewTicker(kvReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			samples = append(samples, sample{now, s.raft.AppliedIndex()})
			var upTo uint64
			for len(samples) > 0 && now.Sub(samples[0].at) >= tombstoneTTL {
				upTo = samples[0].index
				samples = samples[1:]
			}
			req := kvReapRequest{Now: time.Now().UnixNano(), TombstonesUpTo: upTo}
			if _, _, err := s.apply(ctx, msgKVReap, &req); err != nil && ctx.Err() == nil {
				s.logger.Warn("reap kv lock delays and tombstones", "error", err)
			}
		}
	}
}
