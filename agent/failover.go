package agent

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/meridian/meridian/federation"
	"github.com/meridian/meridian/rpc"
)

// dcListTTL is how long a client agent uses the datacenter list (sorted by
// distance) its servers gave it before asking again.
const dcListTTL = 10 * time.Second

// dcList is a client agent's copy of its servers' datacenter list, for the
// failover policy; refreshed in the background while it is used.
type dcList struct {
	mu       sync.Mutex
	dcs      []string
	fetched  time.Time
	fetching bool
}

// FailoverTargets lists the datacenters a lookup of service tries, in
// order, when this datacenter has no healthy instance: the service's
// failover policy (or the "*" one) applied to the datacenters sorted by
// distance. Nil without a policy.
func (a *Agent) FailoverTargets(service string) []string {
	p, ok := a.cfg.FailoverFor(service)
	if !ok {
		return nil
	}
	return federation.Failover{NearestN: p.Nearest, Datacenters: p.Datacenters}.Order(a.datacenters(), a.cfg.Datacenter)
}

// datacenters returns every known datacenter, this one first, then by
// distance from this datacenter's servers.
func (a *Agent) datacenters() []string {
	if a.server != nil {
		return a.server.Datacenters()
	}
	l := &a.dcList
	l.mu.Lock()
	dcs, stale, first := l.dcs, time.Since(l.fetched) > dcListTTL, l.fetched.IsZero()
	refresh := stale && !l.fetching
	if refresh {
		l.fetching = true
	}
	l.mu.Unlock()
	if !refresh {
		return dcs
	}
	fetch := func() []string {
		ctx, cancel := context.WithTimeout(a.ctx, 2*time.Second)
		defer cancel()
		var got []string
		err := a.RPC(ctx, rpc.MethodCatalogDCs, &struct{}{}, &got)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.fetching = false
		if err != nil {
			a.logger.Debug("datacenter list", "error", err)
			return l.dcs
		}
		l.dcs, l.fetched = slices.Clone(got), time.Now()
		return got
	}
	if first {
		return fetch() // nothing to answer with yet
	}
	a.goFunc(func() { fetch() })
	return dcs
}
