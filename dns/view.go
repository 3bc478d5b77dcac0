package dns

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian/meridian/catalog"
	"github.com/miekg/dns"
)

// Backoff after a failed refresh of an entry that has data to serve; an
// entry of another datacenter retries more eagerly, since it answers
// SERVFAIL until it succeeds.
const (
	minRefreshBackoff = 100 * time.Millisecond
	maxRefreshBackoff = 10 * time.Second
	maxRemoteBackoff  = 2 * time.Second
)

// errStale means the view went longer than Config.MaxStale without a
// successful refresh.
var errStale = errors.New("view older than max_stale")

// instance is one healthy service instance with its records precomputed.
// Records are templates: the handler copies them and sets the owner name.
type instance struct {
	node  string     // the node's name, for Config.NodeAllowed
	tags  []string   // lowercase
	addr  dns.RR     // *dns.A, *dns.AAAA or *dns.CNAME for address queries
	srv   [2]dns.SRV // SRV by domain index (0 Domain, 1 AltDomain)
	extra [2]dns.RR  // the SRV target's A/AAAA, nil for a hostname target
}

// snapshot is one immutable state of a view entry.
type snapshot struct {
	index     uint64
	instances []*instance // healthy instances only
	err       error       // the fetch failed and there is no data
}

type viewKey struct{ dc, service string }

// entry is the view of one (dc, service). Its goroutine owns the refresh;
// queries only load snap.
type entry struct {
	key       viewKey
	ctx       context.Context // ends with the server, or when Flush drops the entry
	cancel    context.CancelFunc
	snap      atomic.Pointer[snapshot]
	ready     chan struct{} // closed once snap is set
	lastUsed  atomic.Int64  // unix nanoseconds, coarse (1s)
	refreshed atomic.Int64  // unix nanoseconds of the last successful answer
}

// touch records a use, writing only when the stored time is a second old
// so that concurrent queries do not fight over the cache line.
func (e *entry) touch(now int64) {
	if now-e.lastUsed.Load() > int64(time.Second) {
		e.lastUsed.Store(now)
	}
}

// views is the bounded set of view entries of a Server.
type views struct {
	srv *Server
	mu  sync.RWMutex
	m   map[viewKey]*entry
}

// lookup returns the current snapshot of (dc, service), creating the entry
// and waiting (bounded by ctx) for its first fetch when needed.
// The fast path (a ready entry) allocates nothing; only waiting creates a
// context, bounded by Config.QueryTimeout.
func (v *views) lookup(dc, service string, now int64) (*snapshot, error) {
	cfg := &v.srv.cfg
	if !cfg.AllowStale {
		return v.direct(dc, service)
	}
	key := viewKey{dc, service}
	v.mu.RLock()
	e := v.m[key]
	v.mu.RUnlock()
	if e == nil {
		v.mu.Lock()
		if e = v.m[key]; e == nil {
			if len(v.m) >= cfg.MaxViews || !v.srv.goStart() {
				v.mu.Unlock()
				return v.direct(dc, service)
			}
			e = &entry{key: key, ready: make(chan struct{})}
			e.ctx, e.cancel = context.WithCancel(v.srv.ctx)
			e.lastUsed.Store(now)
			v.m[key] = e
			go v.run(e)
		}
		v.mu.Unlock()
	}
	e.touch(now)
	select {
	case <-e.ready:
	default:
		t := time.NewTimer(cfg.QueryTimeout)
		select {
		case <-e.ready:
			t.Stop()
		case <-t.C:
			return nil, fmt.Errorf("first fetch of service %q in dc %q: %w", service, dc, context.DeadlineExceeded)
		}
	}
	s := e.snap.Load()
	if s.err != nil {
		return nil, s.err
	}
	if now-e.refreshed.Load() > int64(cfg.MaxStale) {
		return nil, errStale
	}
	return s, nil
}

// direct asks the Backend without keeping a view entry.
func (v *views) direct(dc, service string) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(v.srv.ctx, v.srv.cfg.QueryTimeout)
	defer cancel()
	idx, nodes, err := v.srv.backend.ServiceNodes(ctx, dc, service, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("service %q in dc %q: %w", service, dc, err)
	}
	return v.srv.build(dc, service, idx, nodes), nil
}

func (v *views) remove(e *entry) {
	v.mu.Lock()
	if v.m[e.key] == e {
		delete(v.m, e.key)
	}
	v.mu.Unlock()
	e.cancel()
}

// flush drops every entry and ends its refresh: the next lookup of each
// fetches afresh.
func (v *views) flush() {
	v.mu.Lock()
	old := v.m
	v.m = make(map[viewKey]*entry, len(old))
	v.mu.Unlock()
	for _, e := range old {
		e.cancel()
	}
}

func (v *views) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.m)
}

// run keeps e fresh with blocking queries until it goes idle, its first
// fetch fails, or the server shuts down.
func (v *views) run(e *entry) {
	s := v.srv
	defer s.wg.Done()
	defer v.remove(e)
	var index uint64
	failed := false // the snapshot holds a refresh error
	backoff := minRefreshBackoff
	wait := s.cfg.ViewWait
	for {
		ctx, cancel := context.WithTimeout(e.ctx, wait+s.cfg.QueryTimeout)
		minIndex := index
		if failed {
			minIndex = 0 // answer at once: the first success ends the SERVFAILs
		}
		idx, nodes, err := s.backend.ServiceNodes(ctx, e.key.dc, e.key.service, minIndex, wait)
		cancel()
		if e.ctx.Err() != nil {
			if index == 0 {
				e.snap.Store(&snapshot{err: fmt.Errorf("service %q in dc %q: %w", e.key.service, e.key.dc, e.ctx.Err())})
				close(e.ready)
			}
			return
		}
		now := time.Now().UnixNano()
		if err != nil {
			err = fmt.Errorf("service %q in dc %q: %w", e.key.service, e.key.dc, err)
			if index == 0 {
				// No data to serve: fail the waiting queries and let
				// the next lookup start afresh.
				e.snap.Store(&snapshot{err: err})
				close(e.ready)
				return
			}
			s.log.Warn("dns view refresh failed", "dc", e.key.dc, "service", e.key.service, "error", err)
			maxBackoff := maxRefreshBackoff
			if e.key.dc != s.cfg.Datacenter {
				// Another datacenter cut off: answer SERVFAIL rather
				// than its last answer, and look again often, so
				// that a healed link serves again within seconds.
				e.snap.Store(&snapshot{index: index, err: err})
				failed = true
				maxBackoff = maxRemoteBackoff
			}
			if !pause(e.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			if now-e.lastUsed.Load() > int64(s.cfg.ViewIdle) {
				return
			}
			continue
		}
		backoff = minRefreshBackoff
		e.refreshed.Store(now)
		if index == 0 || idx != index || failed {
			e.snap.Store(s.build(e.key.dc, e.key.service, idx, nodes))
			failed = false
		}
		if index == 0 {
			close(e.ready)
		}
		index = max(idx, 1)
		if now-e.lastUsed.Load() > int64(s.cfg.ViewIdle) {
			return
		}
	}
}

// healthy reports whether an instance may be answered and whether it has a
// warning (for the SRV weight).
func healthy(checks []*catalog.HealthCheck, onlyPassing bool) (ok, warning bool) {
	for _, c := range checks {
		if c == nil {
			continue
		}
		switch c.Status {
		case catalog.HealthPassing:
		case catalog.HealthWarning:
			if onlyPassing {
				return false, true
			}
			warning = true
		default: // critical, maintenance, unknown
			return false, warning
		}
	}
	return true, warning
}

// build precomputes the healthy instances and their records.
func (s *Server) build(dc, service string, index uint64, nodes []*catalog.CheckServiceNode) *snapshot {
	ttl := s.cfg.ttlFor(service)
	out := &snapshot{index: index, instances: make([]*instance, 0, len(nodes))}
	for _, n := range nodes {
		if n == nil || n.Node == nil || n.Service == nil {
			continue
		}
		ok, warning := healthy(n.Checks, s.cfg.OnlyPassing)
		if !ok {
			continue
		}
		in := &instance{node: n.Node.Node}
		for _, t := range n.Service.Tags {
			in.tags = append(in.tags, strings.ToLower(t))
		}
		addr := n.Service.Address
		if addr == "" {
			addr = n.Node.Address
		}
		in.addr = addrRR("", addr, ttl)
		if in.addr == nil {
			continue
		}
		weight := n.Service.Weights.Passing
		if warning {
			weight = n.Service.Weights.Warning
		}
		if n.Service.Weights == (catalog.Weights{}) {
			weight = 1
		}
		for i, domain := range s.domains {
			var target string
			switch {
			case net.ParseIP(addr) == nil:
				target = dns.Fqdn(addr)
			case n.Service.Address == "" || n.Service.Address == n.Node.Address:
				target = n.Node.Node + ".node." + dc + "." + domain
			default:
				target = hexIP(net.ParseIP(addr)) + ".addr." + dc + "." + domain
			}
			in.srv[i] = dns.SRV{
				Hdr:      dns.RR_Header{Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
				Priority: 1, Weight: uint16(max(0, min(weight, 65535))), Port: uint16(n.Service.Port), Target: target,
			}
			if ip := net.ParseIP(addr); ip != nil {
				in.extra[i] = addrRR(target, addr, ttl)
			}
		}
		out.instances = append(out.instances, in)
	}
	return out
}

// addrRR is the A, AAAA or (for a hostname) CNAME record of addr, or nil
// when addr is empty.
func addrRR(name, addr string, ttl uint32) dns.RR {
	if addr == "" {
		return nil
	}
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: dns.Fqdn(addr)}
	case ip.To4() != nil:
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: ip.To4()}
	default:
		return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip}
	}
}

// hexIP is the label of ip in HEXIP.addr names.
func hexIP(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return hex.EncodeToString(ip4)
	}
	return hex.EncodeToString(ip.To16())
}

// parseHexIP is the inverse of hexIP, nil when s is not 8 or 32 hex digits.
func parseHexIP(s string) net.IP {
	if len(s) != 8 && len(s) != 32 {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return net.IP(b)
}
