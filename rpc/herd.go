package rpc

import (
	"context"
	"sync"
	"time"
)

// Herd coalesces identical blocking reads that a node relays to another
// (a client agent to its server, a follower to its leader): however many
// callers block on one read, one call at a time goes upstream, and its
// answer is handed to all of them, so a change that wakes 10,000 watchers
// of one service on an agent costs the server one answer. Callers are told
// apart by key, which must name everything that shapes the answer (method,
// arguments, datacenter, consistency, token), never the blocking options.
//
// A caller gets the shared answer without a call of its own only while an
// upstream call blocks at that answer's index: that call has not returned,
// so the answer has not changed (as of the upstream's last word). Answers
// are shared: callers must treat V as read-only. The zero Herd is not
// usable: make one with NewHerd. Safe for concurrent use.
type Herd[V any] struct {
	mu      sync.Mutex
	entries map[string]*herdEntry[V]
	// defaultWait is a blocking read's wait when it asks for none, as
	// upstream would apply it.
	defaultWait time.Duration
}

type herdEntry[V any] struct {
	have   bool
	meta   QueryMeta
	value  V
	flight *herdFlight[V]
}

// herdFlight is one upstream call in progress, blocking past min, and,
// once done is closed, its answer.
type herdFlight[V any] struct {
	min     uint64
	waiters int // callers that joined it
	done    chan struct{}
	meta    QueryMeta
	value   V
	err     error
}

// maxHerdEntries bounds the reads a Herd remembers; past it, those with
// no call in progress are forgotten.
const maxHerdEntries = 1024

// NewHerd returns a Herd whose reads that ask for no wait wait
// defaultWait, as the upstream's default_query_time.
func NewHerd[V any](defaultWait time.Duration) *Herd[V] {
	return &Herd[V]{entries: make(map[string]*herdEntry[V]), defaultWait: defaultWait}
}

// Do answers the blocking read key with options opts (opts.MinIndex > 0),
// through call, which makes the read upstream with the options it is given
// and must not keep ctx's values past its return. A read that does not
// block should not come here: it gains nothing.
func (h *Herd[V]) Do(ctx context.Context, key string, opts QueryOptions, call func(ctx context.Context, opts QueryOptions) (QueryMeta, V, error)) (QueryMeta, V, error) {
	wait := opts.MaxWait
	if wait <= 0 {
		wait = h.defaultWait
	}
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		h.mu.Lock()
		e := h.entries[key]
		if e == nil {
			if len(h.entries) >= maxHerdEntries {
				for k, old := range h.entries {
					if old.flight == nil {
						delete(h.entries, k)
					}
				}
			}
			e = &herdEntry[V]{}
			h.entries[key] = e
		}
		f := e.flight
		if e.have && e.meta.Index > opts.MinIndex && f != nil && f.min == e.meta.Index {
			meta, v := e.meta, e.value
			h.mu.Unlock()
			return meta, v, nil // current: upstream still blocks at its index
		}
		if f != nil {
			f.waiters++
			h.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			}
			select {
			case <-f.done:
				if f.err != nil {
					var zero V
					return QueryMeta{}, zero, f.err
				}
				if f.meta.Index > opts.MinIndex {
					return f.meta, f.value, nil // just brought from upstream
				}
				continue // unchanged there: another round, if this wait allows
			case <-timer.C:
				// This caller's wait is over before the call's: the
				// answer is unchanged, as far as anyone here knows.
				h.mu.Lock()
				meta, v, have := e.meta, e.value, e.have
				h.mu.Unlock()
				if have {
					return meta, v, nil
				}
				// No answer here yet: read the current one, without
				// blocking.
				now := opts
				now.MaxWait = time.Millisecond
				return call(ctx, now)
			case <-ctx.Done():
				var zero V
				return QueryMeta{}, zero, ctx.Err()
			}
		}
		if e.have && e.meta.Index <= opts.MinIndex && !time.Now().Before(deadline) {
			meta, v := e.meta, e.value
			h.mu.Unlock()
			return meta, v, nil // the wait is over, unchanged
		}
		f = &herdFlight[V]{min: opts.MinIndex, done: make(chan struct{})}
		e.flight = f
		h.mu.Unlock()

		// The call serves every caller that joins it, so it is not cut
		// short when this one leaves.
		up := opts
		up.MaxWait = max(time.Until(deadline), time.Millisecond)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), up.MaxWait+up.MaxWait/16+time.Minute)
		meta, v, err := call(cctx, up)
		cancel()
		h.mu.Lock()
		e.flight = nil
		f.meta, f.value, f.err = meta, v, err
		switch {
		case err != nil:
			if h.entries[key] == e {
				delete(h.entries, key)
			}
		case !e.have || meta.Index >= e.meta.Index:
			e.have, e.meta, e.value = true, meta, v
		}
		h.mu.Unlock()
		close(f.done)
		if err != nil {
			var zero V
			return QueryMeta{}, zero, err
		}
		if meta.Index > opts.MinIndex || !time.Now().Before(deadline) {
			return meta, v, nil
		}
	}
}
