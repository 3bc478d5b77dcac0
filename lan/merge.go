package lan

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/serf/serf"
)

// mergeGuard adapts Config.Merge to serf's MergeDelegate and remembers the
// latest refusal, so that Join can return the refusal itself rather than
// memberlist's text of it.
type mergeGuard struct {
	merge func([]Member) error

	seq  atomic.Uint64 // bumped on every refusal
	mu   sync.Mutex
	last error
}

var _ serf.MergeDelegate = (*mergeGuard)(nil)

// NotifyMerge is called by serf, with memberlist's locks held, for members
// met on a join and for each member announced alive.
func (g *mergeGuard) NotifyMerge(ms []*serf.Member) error {
	members := make([]Member, len(ms))
	for i, m := range ms {
		members[i] = memberOf(*m)
	}
	err := g.merge(members)
	if err != nil {
		g.mu.Lock()
		g.last = err
		g.seq.Add(1)
		g.mu.Unlock()
	}
	return err
}

// lastRefusal returns the latest error of Merge.
func (g *mergeGuard) lastRefusal() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}
