package federation

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/meridian/meridian/rpc"
)

// RefreshInterval is how long a route exchange call waits for a change
// before the advertisement is sent anyway, with fresh round-trip times: the
// periodic refresh under the triggered updates.
const RefreshInterval = 5 * time.Second

// Backoff of a route exchange that failed: first retry, and the cap.
const (
	exchangeRetry    = 250 * time.Millisecond
	exchangeRetryMax = 2 * time.Second
)

// exchange runs one poller per alive server of another datacenter.
type exchange struct {
	mu      sync.Mutex
	ctx     context.Context // nil until Run
	servers []Server        // the last Update
	pollers map[string]*poller
	wg      sync.WaitGroup
}

// poller is the route exchange with one neighbour server.
type poller struct {
	server Server
	cancel context.CancelFunc
}

// Run keeps the route exchange going until ctx ends: for every server of
// another datacenter in the WAN pool that has not left it, one call held
// open that answers with its advertisement whenever a path in it changes,
// and every RefreshInterval anyway. A neighbour server that fails the
// exchange has its routes withdrawn until it answers again, so it is the
// exchange, over the link itself, that says whether a link works: a
// server that WAN gossip declared failed keeps being tried (gossip that
// spans more than the links can conclude that from probes across cut
// paths), and one that answers is used. One that left has its routes
// dropped. Run returns once every poller stopped.
func (f *Forwarder) Run(ctx context.Context) {
	f.ex.mu.Lock()
	f.ex.ctx = ctx
	servers := f.ex.servers
	f.ex.mu.Unlock()
	f.reconcile(servers)
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.ex.mu.Lock()
			for addr, p := range f.ex.pollers {
				p.cancel()
				delete(f.ex.pollers, addr)
			}
			f.ex.mu.Unlock()
			f.ex.wg.Wait()
			return
		case <-t.C:
			f.table.Refresh()
		}
	}
}

// Resort orders servers and datacenters again by the latest distance
// estimates, and routes with them.
func (f *Forwarder) Resort() {
	f.router.Resort()
	f.table.Refresh()
}

// reconcile starts a poller for every server of another datacenter in
// servers that has not left, and stops the others.
func (f *Forwarder) reconcile(servers []Server) {
	f.ex.mu.Lock()
	defer f.ex.mu.Unlock()
	f.ex.servers = servers
	if f.ex.ctx == nil || f.ex.ctx.Err() != nil {
		return
	}
	want := map[string]Server{}
	for _, s := range servers {
		if !s.Left && s.Datacenter != f.cfg.Datacenter && s.Addr != "" {
			want[s.Addr] = s
		}
	}
	for addr, p := range f.ex.pollers {
		if s, ok := want[addr]; !ok || s.Datacenter != p.server.Datacenter {
			p.cancel()
			delete(f.ex.pollers, addr)
		}
	}
	for addr, s := range want {
		if _, ok := f.ex.pollers[addr]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(f.ex.ctx)
		p := &poller{server: s, cancel: cancel}
		f.ex.pollers[addr] = p
		f.ex.wg.Add(1)
		go func() {
			defer f.ex.wg.Done()
			f.poll(ctx, s)
		}()
	}
}

// poll runs the route exchange with s until ctx ends, then drops what s
// said.
func (f *Forwarder) poll(ctx context.Context, s Server) {
	defer f.table.Forget(s.Addr)
	var index uint64
	backoff := time.Duration(0)
	wasDown := false
	for {
		req := &RoutesRequest{Datacenter: f.cfg.Datacenter, Index: index, Wait: RefreshInterval}
		var ad Advertisement
		cctx, cancel := context.WithTimeout(ctx, RefreshInterval+f.cfg.Timeout)
		start := time.Now()
		err := f.links.Call(cctx, s.Addr, MethodRoutes, req, &ad)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpc.ErrUnknownMethod) {
			// A server of a release without route exchange: a
			// neighbour with nothing to relay.
			ad, err = Advertisement{Datacenter: s.Datacenter, Server: s.Name, Index: 1}, nil
		}
		if err == nil {
			err = f.table.Heard(s.Addr, s.Datacenter, s.Name, &ad)
		}
		if err == nil {
			if wasDown {
				f.log.Info("route exchange up", "dc", s.Datacenter, "server", s.Name)
			}
			wasDown, backoff = false, 0
			if ad.Index == index && time.Since(start) < RefreshInterval/2 {
				// Nothing changed, yet it did not wait: do not spin on
				// a peer that answers at once.
				if !sleep(ctx, time.Second) {
					return
				}
			}
			index = ad.Index
			continue
		}
		f.table.Down(s.Addr, s.Datacenter, s.Name, err)
		if !wasDown {
			f.log.Warn("route exchange failed", "dc", s.Datacenter, "server", s.Name, "addr", s.Addr, "error", err)
		}
		wasDown, index = true, 0
		backoff = min(max(2*backoff, exchangeRetry), exchangeRetryMax)
		if !sleep(ctx, backoff) {
			return
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
