package federation

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one server of some datacenter, as the WAN pool knows it.
type Server struct {
	// Name is the server's WAN member name, "node.dc".
	Name string
	// Datacenter is the server's datacenter.
	Datacenter string
	// Addr is the server's RPC address on the WAN, host:port: its WAN
	// advertise IP and its server port (TCP for yamux links, UDP for QUIC).
	Addr string
	// Alive is false once WAN gossip declared the server failed or left.
	Alive bool
	// Left is true once the server left the WAN pool gracefully (or is
	// leaving): unlike a failed one, it is no longer tried at all.
	Left bool
}

// RTTFunc estimates the round-trip time from this server to the WAN member
// name (serf's Vivaldi coordinates); false when there is no estimate yet.
type RTTFunc func(name string) (time.Duration, bool)

// Router knows, for every datacenter, its servers in order of distance, and
// which of them recently failed a request. It is fed by Update from WAN
// membership and read on every forwarded request, so reads take no lock:
// they load an immutable table. It is safe for concurrent use.
type Router struct {
	localDC string
	rtt     RTTFunc
	backoff time.Duration // first quarantine of a server that failed
	probe   time.Duration // how long a probe of a quarantined server may take

	mu      sync.Mutex // serialises Update and Resort
	servers []Server   // the last Update
	table   atomic.Pointer[table]

	downMu sync.Mutex
	down   map[string]quarantine // by Addr
}

// table is one immutable routing state.
type table struct {
	byDC map[string][]Server // alive servers, nearest first
	dcs  []string            // every known DC, local first, then by distance
	rtts map[string]time.Duration
}

// quarantine keeps a server that failed out of rotation until it passes.
type quarantine struct {
	until   time.Time
	backoff time.Duration
}

// maxQuarantine caps how long a failing server stays out of rotation, so
// that a healed partition is used again within seconds.
const maxQuarantine = 4 * time.Second

// firstQuarantine is how long a server that failed a request is skipped;
// it doubles with each further failure in a row, up to maxQuarantine.
const firstQuarantine = 500 * time.Millisecond

// NewRouter returns a router for a server of localDC. rtt may be nil (no
// distances: servers and DCs sort by name). probe bounds how long the one
// request that probes a server leaving quarantine may hold it (the link
// timeout).
func NewRouter(localDC string, rtt RTTFunc, probe time.Duration) *Router {
	if rtt == nil {
		rtt = func(string) (time.Duration, bool) { return 0, false }
	}
	r := &Router{localDC: localDC, rtt: rtt, backoff: firstQuarantine, probe: probe, down: map[string]quarantine{}}
	r.table.Store(&table{byDC: map[string][]Server{}, dcs: []string{localDC}})
	return r
}

// Update replaces what the router knows with servers (every WAN member that
// is a server, alive or not). A server that WAN gossip sees alive again
// leaves quarantine: the partition that kept it away has healed.
func (r *Router) Update(servers []Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.table.Load()
	r.servers = slices.Clone(servers)
	r.rebuild()
	r.downMu.Lock()
	for _, s := range servers {
		if s.Alive && !old.alive(s) {
			delete(r.down, s.Addr)
		}
	}
	r.downMu.Unlock()
}

// Resort orders servers and datacenters again by the latest distance
// estimates, which move as coordinates converge.
func (r *Router) Resort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuild()
}

func (r *Router) rebuild() {
	t := &table{byDC: map[string][]Server{}, rtts: map[string]time.Duration{}}
	known := map[string]bool{r.localDC: true}
	for _, s := range r.servers {
		known[s.Datacenter] = true
		if s.Alive {
			t.byDC[s.Datacenter] = append(t.byDC[s.Datacenter], s)
		}
	}
	dist := func(s Server) time.Duration {
		if d, ok := r.rtt(s.Name); ok {
			return d
		}
		return time.Hour // unknown distance sorts last
	}
	for dc, ss := range t.byDC {
		d := make(map[string]time.Duration, len(ss))
		for _, s := range ss {
			d[s.Name] = dist(s)
		}
		slices.SortFunc(ss, func(a, b Server) int {
			return cmp.Or(cmp.Compare(d[a.Name], d[b.Name]), cmp.Compare(a.Name, b.Name))
		})
		all := make([]time.Duration, 0, len(ss))
		for _, s := range ss {
			all = append(all, d[s.Name])
		}
		slices.Sort(all)
		t.rtts[dc] = all[len(all)/2] // the median, as Consul's DC ordering
	}
	for dc := range known {
		t.dcs = append(t.dcs, dc)
	}
	slices.SortFunc(t.dcs, func(a, b string) int {
		return cmp.Or(cmp.Compare(t.distance(r.localDC, a), t.distance(r.localDC, b)), cmp.Compare(a, b))
	})
	r.table.Store(t)
}

// distance is how far dc is for ordering: 0 for the local DC, the median
// RTT to its servers, or an hour when none is known.
func (t *table) distance(local, dc string) time.Duration {
	if dc == local {
		return 0
	}
	if d, ok := t.rtts[dc]; ok {
		return d
	}
	return time.Hour
}

func (t *table) alive(s Server) bool {
	for _, x := range t.byDC[s.Datacenter] {
		if x.Addr == s.Addr {
			return true
		}
	}
	return false
}

// Known reports whether dc is this DC or has any server in the WAN pool,
// alive or not.
func (r *Router) Known(dc string) bool {
	return slices.Contains(r.table.Load().dcs, dc)
}

// Datacenters lists every known datacenter: the local one first, then by
// median round-trip time to their servers, then by name.
func (r *Router) Datacenters() []string {
	return slices.Clone(r.table.Load().dcs)
}

// RTT returns the median round-trip time to dc's alive servers, false when
// dc has none with a distance estimate.
func (r *Router) RTT(dc string) (time.Duration, bool) {
	if dc == r.localDC {
		return 0, true
	}
	d, ok := r.table.Load().rtts[dc]
	return d, ok && d < time.Hour
}

// Servers returns dc's alive servers to try, nearest first, the ones in
// quarantine left out. A server whose quarantine is over is handed to this
// caller only, as a probe: others keep skipping it until the probe's
// request succeeds (Succeeded) or fails (Failed) or the probe window
// passes, so a datacenter that is still cut off costs one slow request per
// quarantine, not one per request. Empty means dc cannot be reached now.
func (r *Router) Servers(dc string) []Server {
	return r.usable(dc, true)
}

func (r *Router) usable(dc string, claim bool) []Server {
	all := r.table.Load().byDC[dc]
	if len(all) == 0 {
		return nil
	}
	now := time.Now()
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if len(r.down) == 0 {
		return all
	}
	out := make([]Server, 0, len(all))
	for _, s := range all {
		q, ok := r.down[s.Addr]
		switch {
		case !ok:
			out = append(out, s)
		case now.After(q.until):
			if claim {
				q.until = now.Add(r.probe)
				r.down[s.Addr] = q
			}
			out = append(out, s)
		}
	}
	return out
}

// Alive returns dc's alive servers, nearest first, quarantined or not.
func (r *Router) Alive(dc string) []Server {
	return r.table.Load().byDC[dc]
}

// Members returns every server of dc in the WAN pool, alive or not, in
// the order of the last Update.
func (r *Router) Members(dc string) []Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Server
	for _, s := range r.servers {
		if s.Datacenter == dc {
			out = append(out, s)
		}
	}
	return out
}

// Reachable reports whether dc has an alive server out of quarantine. It
// claims no probe.
func (r *Router) Reachable(dc string) bool {
	return dc == r.localDC || len(r.usable(dc, false)) > 0
}

// Failed puts the server at addr in quarantine: it is skipped for 500ms,
// doubled for each failure in a row up to 4s.
func (r *Router) Failed(addr string) {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	q := r.down[addr]
	q.backoff = min(max(2*q.backoff, r.backoff), maxQuarantine)
	q.until = time.Now().Add(q.backoff)
	r.down[addr] = q
}

// Succeeded takes the server at addr out of quarantine.
func (r *Router) Succeeded(addr string) {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if len(r.down) > 0 {
		delete(r.down, addr)
	}
}
