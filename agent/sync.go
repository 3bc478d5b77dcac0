package agent

import (
	"context"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/meridian/meridian/agent/checks"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

// Anti-entropy timings.
const (
	// DefaultSyncInterval is the full sync interval up to
	// syncScaleThreshold nodes (Consul's one minute).
	DefaultSyncInterval = time.Minute
	// syncScaleThreshold is the cluster size above which the interval
	// grows with log2 of the size, so the servers see a bounded rate.
	syncScaleThreshold = 128
	// syncRetry is the pause before retrying a failed push.
	syncRetry = 500 * time.Millisecond
	// reapEvery is how often checks are looked at for
	// DeregisterCriticalServiceAfter.
	reapEvery = 250 * time.Millisecond
)

// localState is the agent's services and checks, the truth that
// anti-entropy makes the catalog agree with. Its lock is taken by check
// runners' Notify: never call a Runner's Stop or SetTTL while holding it.
type localState struct {
	mu              sync.Mutex
	services        map[string]*localService
	checks          map[string]*localCheck
	deletedServices map[string]bool // to deregister from the catalog
	deletedChecks   map[string]bool
	stopped         bool

	watchMu sync.Mutex
	watch   chan struct{} // closed at the next change (nil: nobody waits)

	kick   chan struct{}   // a change waits to be pushed
	flush  chan chan error // a caller waits for the changes to be pushed
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLocalState() *localState {
	return &localState{
		services:        map[string]*localService{},
		checks:          map[string]*localCheck{},
		deletedServices: map[string]bool{},
		deletedChecks:   map[string]bool{},
		kick:            make(chan struct{}, 1),
		flush:           make(chan chan error),
	}
}

// syncWait bounds how long SyncLocal waits for a push.
const syncWait = 5 * time.Second

// SyncLocal pushes the local changes to the catalog now and returns once
// they are there (or the push failed, or ctx ended, or syncWait passed),
// so an HTTP call that changed a service answers after a catalog read
// would see the change, as Consul's agent does. A failed push is retried
// by the sync loop as any other; the change stays registered locally.
func (a *Agent) SyncLocal(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	done := make(chan error, 1)
	select {
	case a.local.flush <- done:
	case <-ctx.Done():
		return
	case <-a.ctx.Done():
		return
	}
	select {
	case err := <-done:
		if err != nil {
			a.logger.Debug("push to the catalog failed, will retry", "error", err)
		}
	case <-ctx.Done():
	case <-a.ctx.Done():
	}
}

// changed wakes the sync loop (changes made meanwhile share one push)
// and the blocking reads of the local state.
func (l *localState) changed() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
	l.watchMu.Lock()
	if l.watch != nil {
		close(l.watch)
		l.watch = nil
	}
	l.watchMu.Unlock()
}

// watchCh is closed at the next change of the local state.
func (l *localState) watchCh() <-chan struct{} {
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	if l.watch == nil {
		l.watch = make(chan struct{})
	}
	return l.watch
}

// LocalChanged is closed at the next change of the local services or
// checks: a blocking read of them (?hash=) waits on it.
func (a *Agent) LocalChanged() <-chan struct{} { return a.local.watchCh() }

// startLocal loads the config's and the persisted definitions and starts
// the sync loop. Called by Start once the HTTP API and RPC are ready.
func (a *Agent) startLocal() {
	ctx, cancel := context.WithCancel(context.Background())
	a.local.cancel = cancel
	a.loadDefinitions(a.cfg.Services, a.cfg.Checks)
	a.loadPersisted()
	a.local.wg.Add(1)
	go func() {
		defer a.local.wg.Done()
		a.syncLoop(ctx)
	}()
}

// stopLocal stops the sync loop and every check runner. Safe to call twice
// and before startLocal.
func (a *Agent) stopLocal() {
	l := a.local
	l.mu.Lock()
	l.stopped = true
	cancel := l.cancel
	var runners []*checks.Runner
	for _, c := range l.checks {
		if c.runner != nil {
			runners = append(runners, c.runner)
		}
	}
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	for _, r := range runners {
		r.Stop()
	}
	l.wg.Wait()
}

// syncInterval is the full sync interval for the cluster's size, plus a
// random stagger of up to a quarter so that agents do not sync together.
func (a *Agent) syncInterval() time.Duration {
	base := a.opts.SyncInterval
	if base <= 0 {
		base = DefaultSyncInterval
		if n := a.aliveMembers(); n > syncScaleThreshold {
			f := math.Ceil(math.Log2(float64(n)) - math.Log2(syncScaleThreshold) + 1)
			base = time.Duration(f * float64(base))
		}
	}
	return base + rand.N(base/4+1)
}

// aliveMembers counts the alive members of the LAN pool: the size the
// periodic sends (full syncs, coordinates) scale their interval with.
func (a *Agent) aliveMembers() int {
	n := 0
	for _, m := range a.lan.Members() {
		if m.Status == lan.StatusAlive {
			n++
		}
	}
	return n
}

// syncLoop pushes changes as they happen and does a full sync every
// interval, until ctx ends.
func (a *Agent) syncLoop(ctx context.Context) {
	full := time.NewTimer(0) // a full sync at start
	defer full.Stop()
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	var retry <-chan time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-a.local.kick:
			err = a.syncChanges(ctx)
		case done := <-a.local.flush:
			err = a.syncChanges(ctx)
			done <- err
		case <-retry:
			retry = nil
			err = a.syncChanges(ctx)
		case <-full.C:
			err = a.syncFull(ctx)
			full.Reset(a.syncInterval())
		case <-reap.C:
			a.reapCritical()
			continue
		}
		if err != nil && ctx.Err() == nil {
			a.logger.Debug("anti-entropy sync failed, will retry", "error", err)
			retry = time.After(syncRetry)
		}
	}
}

// syncFull compares the catalog's view of this node with the local state,
// marks what differs, deregisters what the agent does not have, and pushes.
func (a *Agent) syncFull(ctx context.Context) error {
	node := a.cfg.NodeName
	var ns rpc.Answer[*catalog.NodeServices]
	if err := a.RPC(ctx, rpc.MethodCatalogNode, &rpc.Query[catalog.NodeRequest]{QueryOptions: rpc.QueryOptions{Token: a.agentToken()}, Args: catalog.NodeRequest{Node: node}}, &ns); err != nil {
		return err
	}
	var nc rpc.Answer[[]*catalog.HealthCheck]
	if err := a.RPC(ctx, rpc.MethodHealthNode, &rpc.Query[catalog.NodeRequest]{QueryOptions: rpc.QueryOptions{Token: a.agentToken()}, Args: catalog.NodeRequest{Node: node}}, &nc); err != nil {
		return err
	}
	remoteSvcs := map[string]*catalog.Service{}
	if ns.Value != nil {
		remoteSvcs = ns.Value.Services
	}
	tagged, meta := a.nodeInfo()
	if ns.Value == nil || ns.Value.Node == nil || !maps.Equal(ns.Value.Node.Meta, meta) ||
		!maps.Equal(ns.Value.Node.TaggedAddresses, tagged) {
		a.nodeSynced.Store(false)
	}
	l := a.local
	l.mu.Lock()
	for id, s := range l.services {
		if r, ok := remoteSvcs[id]; !ok || !sameService(s.svc, r) {
			s.synced = false
		}
	}
	for id := range remoteSvcs {
		if _, ok := l.services[id]; !ok && id != catalog.ConsulServiceID {
			l.deletedServices[id] = true
		}
	}
	remoteChecks := map[string]*catalog.HealthCheck{}
	for _, c := range nc.Value {
		remoteChecks[c.CheckID] = c
	}
	for id, c := range l.checks {
		if r, ok := remoteChecks[id]; !ok || !sameCheck(c.check, r) {
			c.synced = false
			if s, ok := l.services[c.check.ServiceID]; ok {
				s.synced = false
			}
		}
	}
	for id, r := range remoteChecks {
		if _, ok := l.checks[id]; ok || id == catalog.SerfCheckID || l.deletedServices[r.ServiceID] {
			continue
		}
		l.deletedChecks[id] = true
	}
	l.mu.Unlock()
	return a.syncChanges(ctx)
}

func sameService(a, b *catalog.Service) bool {
	return a.ID == b.ID && a.Service == b.Service && a.Address == b.Address && a.Port == b.Port &&
		a.Weights == b.Weights && a.EnableTagOverride == b.EnableTagOverride &&
		slices.Equal(emptyNil(a.Tags), emptyNil(b.Tags)) && maps.Equal(a.Meta, b.Meta) &&
		maps.Equal(a.TaggedAddresses, b.TaggedAddresses) && a.SocketPath == b.SocketPath &&
		slices.Equal(a.Ports, b.Ports) && (a.Locality == nil) == (b.Locality == nil) &&
		(a.Locality == nil || *a.Locality == *b.Locality)
}

func emptyNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func sameCheck(a, b *catalog.HealthCheck) bool {
	return a.Status == b.Status && a.Output == b.Output && a.Name == b.Name && a.Notes == b.Notes &&
		a.ServiceID == b.ServiceID
}

// syncChanges pushes what is out of sync: deregistrations first, then each
// changed service with all its checks, then changed node checks. An entry
// changed again while its push was in flight stays out of sync.
func (a *Agent) syncChanges(ctx context.Context) error {
	l := a.local
	l.mu.Lock()
	deadSvcs := slices.Collect(maps.Keys(l.deletedServices))
	deadChecks := slices.Collect(maps.Keys(l.deletedChecks))
	type push struct {
		svc    *localService
		checks []*localCheck
		req    catalog.RegisterRequest
	}
	var pushes []push
	bySvc := map[string]int{}
	for _, s := range l.services {
		if !s.synced {
			bySvc[s.svc.ID] = len(pushes)
			pushes = append(pushes, push{svc: s, req: a.registerRequest(s.svc)})
		}
	}
	for _, c := range l.checks {
		if c.check.ServiceID != "" {
			if i, ok := bySvc[c.check.ServiceID]; ok {
				pushes[i].checks = append(pushes[i].checks, c)
				cc := *c.check
				pushes[i].req.Checks = append(pushes[i].req.Checks, &cc)
				continue
			}
		}
		if !c.synced {
			p := push{checks: []*localCheck{c}, req: a.registerRequest(nil)}
			cc := *c.check
			p.req.Check = &cc
			pushes = append(pushes, p)
		}
	}
	l.mu.Unlock()

	var errs []error
	if !a.nodeSynced.Load() {
		if err := a.syncNode(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range deadSvcs {
		if err := a.catalogDeregister(ctx, id, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		// A service registered again meanwhile is pushed by its own kick;
		// one deleted again is caught by the next full sync at worst.
		l.mu.Lock()
		delete(l.deletedServices, id)
		l.mu.Unlock()
	}
	for _, id := range deadChecks {
		if err := a.catalogDeregister(ctx, "", id); err != nil {
			errs = append(errs, err)
			continue
		}
		l.mu.Lock()
		delete(l.deletedChecks, id)
		l.mu.Unlock()
	}
	for _, p := range pushes {
		var reply rpc.WriteResult
		err := a.RPC(ctx, rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{WriteOptions: rpc.WriteOptions{Token: a.agentToken()}, Args: p.req}, &reply)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.mu.Lock()
		if p.svc != nil && l.services[p.svc.svc.ID] == p.svc {
			p.svc.synced = true
		}
		for i, c := range p.checks {
			sent := p.req.Check
			if p.svc != nil {
				sent = p.req.Checks[i]
			}
			if cur := l.checks[c.check.CheckID]; cur == c && c.check.Status == sent.Status && c.check.Output == sent.Output {
				c.synced = true
			}
		}
		l.mu.Unlock()
	}
	return errors.Join(errs...)
}

// nodeInfo is what this agent registers about its node, as Consul's agent
// does: tagged addresses lan, lan_ipv4 (or lan_ipv6), wan, wan_ipv4 (or
// wan_ipv6), and meta node_meta plus consul-network-segment and
// consul-version (ConsulCompatVersion).
func (a *Agent) nodeInfo() (tagged, meta map[string]string) {
	lanIP, wanIP := a.advertise, a.cfg.AdvertiseWAN()
	if wanIP == "" {
		wanIP = lanIP
	}
	tagged = map[string]string{"lan": lanIP, "wan": wanIP}
	for name, ip := range map[string]string{"lan": lanIP, "wan": wanIP} {
		if addr, err := netip.ParseAddr(ip); err == nil && addr.Unmap().Is6() {
			tagged[name+"_ipv6"] = ip
		} else {
			tagged[name+"_ipv4"] = ip
		}
	}
	if m := a.nodeMeta.Load(); m != nil {
		meta = maps.Clone(*m)
	} else {
		meta = maps.Clone(a.cfg.NodeMeta)
	}
	if meta == nil {
		meta = make(map[string]string, 2)
	}
	meta["consul-network-segment"] = ""
	meta["consul-version"] = ConsulCompatVersion
	return tagged, meta
}

// syncNode registers this node with its tagged addresses and meta.
func (a *Agent) syncNode(ctx context.Context) error {
	tagged, meta := a.nodeInfo()
	req := catalog.RegisterRequest{
		ID: a.nodeID, Node: a.cfg.NodeName, Address: a.advertise, Datacenter: a.cfg.Datacenter,
		TaggedAddresses: tagged, NodeMeta: meta,
	}
	var reply rpc.WriteResult
	if err := a.RPC(ctx, rpc.MethodCatalogReg, &rpc.Write[catalog.RegisterRequest]{WriteOptions: rpc.WriteOptions{Token: a.agentToken()}, Args: req}, &reply); err != nil {
		return err
	}
	a.nodeSynced.Store(true)
	return nil
}

// registerRequest is the registration of svc (nil for a node check) on
// this node.
func (a *Agent) registerRequest(svc *catalog.Service) catalog.RegisterRequest {
	req := catalog.RegisterRequest{
		ID: a.nodeID, Node: a.cfg.NodeName, Address: a.advertise, Datacenter: a.cfg.Datacenter,
		SkipNodeUpdate: true,
	}
	if svc != nil {
		c := *svc
		req.Service = &c
	}
	return req
}

func (a *Agent) catalogDeregister(ctx context.Context, serviceID, checkID string) error {
	var reply rpc.WriteResult
	req := rpc.Write[catalog.DeregisterRequest]{WriteOptions: rpc.WriteOptions{Token: a.agentToken()}, Args: catalog.DeregisterRequest{
		Node: a.cfg.NodeName, ServiceID: serviceID, CheckID: checkID,
	}}
	return a.RPC(ctx, rpc.MethodCatalogDereg, &req, &reply)
}

// reapCritical deregisters services whose check has been critical for
// longer than its DeregisterCriticalServiceAfter.
func (a *Agent) reapCritical() {
	l := a.local
	now := time.Now()
	var reap []string
	l.mu.Lock()
	for _, c := range l.checks {
		d := c.def.DeregisterCriticalServiceAfter
		if d > 0 && c.check.ServiceID != "" && !c.criticalSince.IsZero() && now.Sub(c.criticalSince) > d {
			reap = append(reap, c.check.ServiceID)
		}
	}
	l.mu.Unlock()
	for _, id := range reap {
		if err := a.DeregisterService(id); err == nil {
			a.logger.Info("deregistered service whose check stayed critical", "service", id)
		}
	}
}
