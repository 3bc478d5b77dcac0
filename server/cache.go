package server

import (
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/meridian/meridian/catalog"
)

// answerCache keeps recent answers of hot reads (health of a service) with
// the watch channels their read registered: while none has fired, the
// answer is still exact and is reused without reading the state store
// again. Cached values are shared and must be treated as read-only, as the
// state store's own rows are.
type answerCache struct {
	mu      sync.Mutex
	entries map[string]*cachedAnswer
	max     int
}

type cachedAnswer struct {
	index uint64
	value any
	ws    memdb.WatchSet
}

// maxCachedWatches bounds the watch channels an answer may depend on and
// still be cached: checking them is a loop over the set on every hit.
const maxCachedWatches = 16

func newAnswerCache(max int) *answerCache {
	return &answerCache{entries: make(map[string]*cachedAnswer), max: max}
}

// get returns the answer cached under key if nothing it depends on changed.
func (c *answerCache) get(key string) *cachedAnswer {
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	for ch := range e.ws {
		select {
		case <-ch:
			return nil // changed since
		default:
		}
	}
	return e
}

// put caches an answer read with ws.
func (c *answerCache) put(key string, e *cachedAnswer) {
	if len(e.ws) > maxCachedWatches {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
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
