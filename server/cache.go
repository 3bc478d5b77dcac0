package server

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
)

// answerCache keeps recent answers of hot reads (health of a service) with
// the watch channels their read registered: while none has fired, the
// answer is still exact and is reused without reading the state store
// again. It is also where the blocking queries on one read meet: every
// waiter parks on the channels of the one cached answer, and once they
// fire, the first waiter to look evaluates the read again while the others
// wait for its answer (load), so a wake costs one read of the state per
// (query, index), not one per waiter, and no goroutine of its own. Cached
// values are shared and must be treated as read-only, as the state store's
// own rows are.
type answerCache struct {
	mu      sync.Mutex
	entries map[string]*cachedAnswer
	flights map[string]*flight
	max     int
	// evaluations counts the reads load ran (the
	// health_service_evaluations metric).
	evaluations atomic.Uint64
}

type cachedAnswer struct {
	index uint64
	value any
	ws    memdb.WatchSet
}

// flight is a read in progress that waiters of the same key share.
type flight struct {
	done chan struct{}
	e    *cachedAnswer
	err  error
}

// maxCachedWatches bounds the watch channels an answer may depend on and
// still be cached: checking them is a loop over the set on every hit, and
// a waiter parks on all of them in one select (go-memdb's WatchCtx takes
// up to 32 channels without a goroutine).
const maxCachedWatches = 16

func newAnswerCache(max int) *answerCache {
	return &answerCache{entries: make(map[string]*cachedAnswer), flights: make(map[string]*flight), max: max}
}

// changed reports whether a channel the answer depends on has fired.
func (e *cachedAnswer) changed() bool {
	for ch := range e.ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// load returns the current answer of key: the cached one while it is
// exact, else the answer of one evaluation of read shared by every caller
// that asks meanwhile. read returns the answer with the watch set it
// registered; an answer whose set is too large to check cheaply is
// returned but not kept.
func (c *answerCache) load(key string, read func() (*cachedAnswer, error)) (*cachedAnswer, error) {
	c.mu.Lock()
	if e := c.entries[key]; e != nil && !e.changed() {
		c.mu.Unlock()
		return e, nil
	}
	if f := c.flights[key]; f != nil {
		c.mu.Unlock()
		<-f.done // a read of the state store: it does not block
		return f.e, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()
	c.evaluations.Add(1)
	f.e, f.err = read()
	c.mu.Lock()
	delete(c.flights, key)
	if f.err == nil && len(f.e.ws) <= maxCachedWatches {
		c.putLocked(key, f.e)
	}
	c.mu.Unlock()
	close(f.done)
	return f.e, f.err
}

// putLocked caches e under key, dropping an arbitrary entry when full.
func (c *answerCache) putLocked(key string, e *cachedAnswer) {
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
}

// serviceKey names a health query by everything that shapes its answer.
func serviceKey(r *catalog.ServiceRequest) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Service))
	if r.Passing {
		b.WriteString("|passing")
	}
	for _, t := range r.Tags {
		b.WriteString("|tag=")
		b.WriteString(strings.ToLower(t))
	}
	if len(r.NodeMeta) > 0 {
		keys := make([]string, 0, len(r.NodeMeta))
		for k := range r.NodeMeta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString("|meta=")
			b.WriteString(k)
			b.WriteByte(':')
			b.WriteString(r.NodeMeta[k])
		}
	}
	return b.String()
}
