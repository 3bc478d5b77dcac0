package lan

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/serf/serf"
)

// recentRefusals is how many refusals mergeGuard remembers: while a join
// is refused, gossip from the member joined may bring alive messages that
// are refused too, and the join's own refusal must still be found.
const recentRefusals = 32

// mergeGuard adapts Config.Merge to serf's MergeDelegate and remembers the
// latest refusals, so that Join can return the refusal itself rather than
// memberlist's text of it.
type mergeGuard struct {
	merge func([]Member) error

	seq    atomic.Uint64 // bumped on every refusal
	mu     sync.Mutex
	recent [recentRefusals]error // refusal number n is at n % recentRefusals
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
		g.recent[g.seq.Load()%recentRefusals] = err
		g.seq.Add(1)
		g.mu.Unlock()
	}
	return err
}

// refusalIn returns the newest refusal made after the first since refusals
// whose text memberlist's error text contains, or nil.
func (g *mergeGuard) refusalIn(text string, since uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	seq := g.seq.Load()
	for n := seq; n > since && seq-n < recentRefusals; n-- {
		if r := g.recent[(n-1)%recentRefusals]; r != nil && strings.Contains(text, r.Error()) {
			return r
		}
	}
	return nil
}
