package federation

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxHops is the longest path, in datacenters after this one, a route may
// take, and the most relays a request may cross: enough for a ring of 50
// datacenters with one of them down, short enough that a path that grew
// by a fault never circles for long.
const MaxHops = 64

// Route is one way to reach a datacenter: through NextHop, the neighbour
// datacenter a request is handed to, along Path (NextHop first, the
// destination last).
type Route struct {
	// Dest is the datacenter reached.
	Dest string `json:"Datacenter"`
	// NextHop is the neighbour datacenter requests for Dest go to; Dest
	// itself for a direct link.
	NextHop string
	// Path is the datacenters a request crosses, NextHop first, Dest last.
	Path []string
	// RTT is the estimated round trip along Path: to NextHop (serf's
	// coordinates) plus what NextHop advertised.
	RTT time.Duration
}

// Hops is how many links a request for Dest crosses.
func (r Route) Hops() int { return len(r.Path) }

// Advertisement is what a server tells a neighbour it can reach: every
// datacenter, with the best path to it that does not cross the asking
// datacenter (split horizon: the asker could not use one that does), its
// own first (a path of one, RTT 0).
type Advertisement struct {
	// Datacenter is the advertising server's datacenter, the first hop of
	// every path.
	Datacenter string
	// Server is the advertising server's name, for logs.
	Server string
	// Index moves whenever a path in Routes changes; RTTs alone do not
	// move it.
	Index uint64
	// Routes are the datacenters reachable from Datacenter.
	Routes []AdvertisedRoute
}

// AdvertisedRoute is one entry of an Advertisement.
type AdvertisedRoute struct {
	// Path starts with the advertising datacenter and ends with the one
	// reached.
	Path []string
	// RTT is the advertiser's estimate of the round trip along Path.
	RTT time.Duration
}

// RoutesRequest asks a server for its advertisement: a blocking call that
// answers once the advertisement's Index passes Index, or after Wait.
type RoutesRequest struct {
	// Datacenter is the asking server's datacenter (split horizon).
	Datacenter string
	// Index is the last index the asker holds; 0 answers at once.
	Index uint64
	// Wait is how long to hold the call when nothing changed.
	Wait time.Duration
}

// Blocking reports the call's wait, so that links give it that long.
func (r *RoutesRequest) Blocking() (time.Duration, bool) { return r.Wait, r.Index != 0 }

// RoutesRequest is not marked a read (IsRead) on purpose: a link that
// broke must fail the exchange at once, so that the routes through it are
// withdrawn, not be retried by the pool on a new link first (which, to a
// dead server, takes a whole handshake timeout).

// Link is the state of the route exchange with one server of a neighbour
// datacenter, for the operator's view.
type Link struct {
	// Datacenter and Server name the neighbour server.
	Datacenter, Server string
	// Addr is its WAN RPC address.
	Addr string
	// Up is true while the exchange with it works.
	Up bool
	// Routes is how many datacenters it advertised.
	Routes int
	// Error is why the exchange last failed, when it is down.
	Error string `json:",omitempty"`
}

// Table is the route state: the advertisements heard from neighbour
// servers, and the routes computed from them. Reads (Lookup, Best) load an
// immutable snapshot and take no lock. It is safe for concurrent use.
type Table struct {
	localDC string
	server  string
	rtt     func(dc string) (time.Duration, bool)
	log     *slog.Logger

	mu       sync.Mutex
	heard    map[string]heard     // by neighbour server Addr
	gone     map[string]time.Time // relayed datacenters whose routes went, since when; never written once in a snapshot
	now      func() time.Time     // the clock; tests set it
	index    uint64
	adPaths  map[string][]string // the paths behind index, by destination: the best, then the others
	changed  chan struct{}       // closed and replaced when index moves
	snapshot atomic.Pointer[routeSnapshot]
}

// heard is the last word of one neighbour server.
type heard struct {
	dc, server string
	up         bool
	ad         []AdvertisedRoute // valid entries only
	err        string
	refused    map[string]bool // what was refused of its last advertisement, logged once
}

// routeSnapshot is one immutable route state.
type routeSnapshot struct {
	routes map[string][]Route   // by destination, best first, one per next hop
	linked map[string]bool      // neighbour DCs with an exchange up
	gone   map[string]time.Time // Table.gone when it was taken
	index  uint64
}

// NewTable returns an empty table for server of localDC; rtt estimates the
// round trip to a neighbour datacenter (Router.RTT).
func NewTable(localDC, server string, rtt func(dc string) (time.Duration, bool), log *slog.Logger) *Table {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Table{
		localDC: localDC, server: server, rtt: rtt,
		log:   log,
		heard: map[string]heard{}, gone: map[string]time.Time{}, now: time.Now,
		adPaths: map[string][]string{}, changed: make(chan struct{}),
		index: 1, // 0 asks for an answer at once
	}
	t.snapshot.Store(&routeSnapshot{routes: map[string][]Route{}, linked: map[string]bool{}, gone: t.gone, index: 1})
	return t
}

// Heard records the advertisement of the neighbour server at addr, named
// server, of datacenter dc (as WAN gossip and, with TLS, its certificate
// say),
// keeping only the entries that make sense: a path must start with dc,
// hold no datacenter twice, not cross this one, and be at most MaxHops
// long. Anything else is refused with a log line naming the datacenter
// and the reason, and the rest of the advertisement is used.
func (t *Table) Heard(addr, dc, server string, ad *Advertisement) error {
	if ad.Datacenter != dc {
		err := fmt.Errorf("advertisement from %s (%s) names datacenter %q, but that server is of %q", ad.Server, addr, ad.Datacenter, dc)
		t.mu.Lock()
		if h := t.heard[addr]; h.up || h.err != err.Error() {
			t.log.Warn("route advertisement refused", "dc", dc, "server", ad.Server, "addr", addr, "reason", err.Error())
		}
		t.mu.Unlock()
		t.Down(addr, dc, server, err)
		return err
	}
	valid := make([]AdvertisedRoute, 0, len(ad.Routes))
	refused := map[string]bool{}
	for _, r := range ad.Routes {
		if reason := t.check(dc, r.Path); reason != "" {
			refused[fmt.Sprintf("%v: %s", r.Path, reason)] = true
			continue
		}
		valid = append(valid, AdvertisedRoute{Path: r.Path, RTT: max(r.RTT, 0)})
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := t.heard[addr].refused
	for why := range refused {
		if !prev[why] {
			t.log.Warn("route refused", "dc", dc, "server", ad.Server, "addr", addr, "reason", why)
		}
	}
	t.heard[addr] = heard{dc: dc, server: server, up: true, ad: valid, refused: refused}
	t.recompute()
	return nil
}

// check says what is wrong with path advertised by a server of dc, ""
// when nothing is.
func (t *Table) check(dc string, path []string) string {
	switch {
	case len(path) == 0:
		return "empty path"
	case path[0] != dc:
		return fmt.Sprintf("path starts at %q, not at the advertising datacenter", path[0])
	case len(path) > MaxHops:
		return fmt.Sprintf("path of %d hops is over the limit of %d", len(path), MaxHops)
	}
	for i, x := range path {
		if x == "" {
			return "empty datacenter name in path"
		}
		if x == t.localDC {
			return "routing loop: path crosses this datacenter"
		}
		if slices.Contains(path[:i], x) {
			return fmt.Sprintf("routing loop: %q appears twice", x)
		}
	}
	return ""
}

// Down records that the exchange with the neighbour server at addr
// failed: its routes are withdrawn until it answers again.
func (t *Table) Down(addr, dc, server string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.heard[addr]
	if ok && !h.up && h.err == err.Error() {
		return
	}
	t.heard[addr] = heard{dc: dc, server: server, err: err.Error()}
	t.recompute()
}

// Forget drops what the server at addr said: it left the WAN pool or
// failed there.
func (t *Table) Forget(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.heard[addr]; !ok {
		return
	}
	delete(t.heard, addr)
	t.recompute()
}

// Refresh computes the routes again with the latest round-trip estimates.
func (t *Table) Refresh() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recompute()
}

// rttSlack is how much better a new path must be than the one in use
// before routes move to it: coordinates jitter, and a route that flips
// with them would send updates for nothing.
func rttSlack(d time.Duration) time.Duration { return max(2*time.Millisecond, d/10) }

// recompute builds the routes from what was heard; t.mu is held.
func (t *Table) recompute() {
	old := t.snapshot.Load()
	linked := map[string]bool{}
	for _, h := range t.heard {
		if h.up {
			linked[h.dc] = true
		}
	}
	nb := map[string]time.Duration{}
	for dc := range linked {
		d, _ := t.rtt(dc)
		nb[dc] = d
	}
	// The best route per destination and next hop.
	cand := map[string]map[string]Route{}
	add := func(r Route) {
		m := cand[r.Dest]
		if m == nil {
			m = map[string]Route{}
			cand[r.Dest] = m
		}
		if cur, ok := m[r.NextHop]; !ok || r.RTT < cur.RTT || r.RTT == cur.RTT && len(r.Path) < len(cur.Path) {
			m[r.NextHop] = r
		}
	}
	for dc, d := range nb {
		add(Route{Dest: dc, NextHop: dc, Path: []string{dc}, RTT: d})
	}
	for _, h := range t.heard {
		if !h.up {
			continue
		}
		for _, a := range h.ad {
			dest := a.Path[len(a.Path)-1]
			if dest == h.dc {
				continue // the direct route, above
			}
			add(Route{Dest: dest, NextHop: h.dc, Path: a.Path, RTT: nb[h.dc] + a.RTT})
		}
	}
	routes := make(map[string][]Route, len(cand))
	for dest, m := range cand {
		rs := make([]Route, 0, len(m))
		for _, r := range m {
			rs = append(rs, r)
		}
		slices.SortFunc(rs, func(a, b Route) int {
			// A direct link wins whenever it is up.
			if (a.NextHop == dest) != (b.NextHop == dest) {
				if a.NextHop == dest {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(a.RTT, b.RTT), cmp.Compare(len(a.Path), len(b.Path)), cmp.Compare(a.NextHop, b.NextHop))
		})
		// Keep the next hop in use unless the new best is clearly better.
		if prev := old.routes[dest]; len(prev) > 0 && rs[0].NextHop != prev[0].NextHop && rs[0].NextHop != dest {
			if i := slices.IndexFunc(rs, func(r Route) bool { return r.NextHop == prev[0].NextHop }); i > 0 && rs[i].RTT <= rs[0].RTT+rttSlack(rs[0].RTT) {
				r := rs[i]
				copy(rs[1:i+1], rs[:i])
				rs[0] = r
			}
		}
		routes[dest] = rs
	}
	t.forgetGone(old, routes)
	// The advertisements change when a best path or an alternative does
	// (each asker is sent the best path not through it).
	paths := make(map[string][]string, len(routes))
	for dest, rs := range routes {
		var all []string
		for _, r := range rs {
			if len(r.Path) < MaxHops {
				all = append(all, strings.Join(r.Path, "\x00"))
			}
		}
		if len(all) > 0 {
			// The best first, then the others in a fixed order, so
			// that round-trip jitter reordering them is no change.
			slices.Sort(all[1:])
			paths[dest] = all
		}
	}
	index := t.index
	moved := !samePaths(paths, t.adPaths)
	if moved {
		t.index++
		index = t.index
		t.adPaths = paths
	}
	// The snapshot is out before the wake: a woken Advertise reads it.
	t.snapshot.Store(&routeSnapshot{routes: routes, linked: linked, gone: t.gone, index: index})
	if moved {
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

// ForgetAfter is how long a datacenter reached through a relay stays known
// once its last route went: it answers "unreachable" (503) meanwhile, and
// "no path" (500) after, as a WAN server that failed is reaped after
// Consul's reconnect_timeout_wan (72h). A neighbour is known while the WAN
// pool holds it, and unknown once pruned from it, as in Consul.
const ForgetAfter = 72 * time.Hour

// forgetGone notes the relayed datacenters of old that routes lacks, and
// forgets those gone longer than ForgetAfter; t.mu is held. t.gone is
// replaced, not written, as snapshots share it.
func (t *Table) forgetGone(old *routeSnapshot, routes map[string][]Route) {
	now := t.now()
	var gone map[string]time.Time
	edit := func() map[string]time.Time {
		if gone == nil {
			gone = maps.Clone(t.gone)
		}
		return gone
	}
	for dest := range t.gone {
		if _, ok := routes[dest]; ok || now.Sub(t.gone[dest]) >= ForgetAfter {
			delete(edit(), dest)
		}
	}
	for dest, rs := range old.routes {
		if _, ok := routes[dest]; !ok && rs[0].NextHop != dest {
			if _, known := t.gone[dest]; !known {
				edit()[dest] = now
			}
		}
	}
	if gone != nil {
		t.gone = gone
	}
}

func samePaths(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, p := range a {
		if q, ok := b[k]; !ok || !slices.Equal(p, q) {
			return false
		}
	}
	return true
}

// Advertise returns this server's advertisement for a server of asker,
// once its index passes index or wait passes (or done closes), whichever
// comes first. For each destination it holds the best path that does not
// cross asker (split horizon), not only the best one: the asker then
// holds a way round ready when the best path breaks, instead of waiting
// for the break to travel to where one starts and the new path to come
// back.
func (t *Table) Advertise(done <-chan struct{}, asker string, index uint64, wait time.Duration) *Advertisement {
	if index != 0 {
		t.mu.Lock()
		cur, changed := t.index, t.changed
		t.mu.Unlock()
		if cur <= index {
			timer := time.NewTimer(wait)
			select {
			case <-changed:
			case <-timer.C:
			case <-done:
			}
			timer.Stop()
		}
	}
	s := t.snapshot.Load()
	ad := &Advertisement{Datacenter: t.localDC, Server: t.server, Index: s.index}
	ad.Routes = append(ad.Routes, AdvertisedRoute{Path: []string{t.localDC}})
	for _, rs := range s.routes {
		i := slices.IndexFunc(rs, func(r Route) bool { return len(r.Path) < MaxHops && !slices.Contains(r.Path, asker) })
		if i < 0 {
			continue
		}
		r := rs[i]
		ad.Routes = append(ad.Routes, AdvertisedRoute{Path: append([]string{t.localDC}, r.Path...), RTT: r.RTT})
	}
	return ad
}

// Lookup returns the routes to dc, best first, one per next hop.
func (t *Table) Lookup(dc string) []Route {
	return t.snapshot.Load().routes[dc]
}

// Linked reports whether the route exchange with some server of dc is up.
func (t *Table) Linked(dc string) bool {
	return t.snapshot.Load().linked[dc]
}

// Up reports whether the route exchange with the server at addr works.
func (t *Table) Up(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heard[addr].up
}

// Seen reports whether dc has a route, or had one through a relay less
// than ForgetAfter ago. It takes no lock: DNS asks it on every lookup of
// another datacenter.
func (t *Table) Seen(dc string) bool {
	s := t.snapshot.Load()
	if len(s.routes[dc]) > 0 {
		return true
	}
	since, ok := s.gone[dc]
	return ok && t.now().Sub(since) < ForgetAfter
}

// Routes lists the best route to every reachable datacenter, nearest
// first, with the alternatives after each best one left out.
func (t *Table) Routes() []Route {
	s := t.snapshot.Load()
	out := make([]Route, 0, len(s.routes))
	for _, rs := range s.routes {
		out = append(out, rs[0])
	}
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.RTT, b.RTT), cmp.Compare(len(a.Path), len(b.Path)), cmp.Compare(a.Dest, b.Dest))
	})
	return out
}

// Links lists the state of the exchange with every neighbour server.
func (t *Table) Links() []Link {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Link, 0, len(t.heard))
	for addr, h := range t.heard {
		out = append(out, Link{Datacenter: h.dc, Server: h.server, Addr: addr, Up: h.up, Routes: len(h.ad), Error: h.err})
	}
	slices.SortFunc(out, func(a, b Link) int {
		return cmp.Or(cmp.Compare(a.Datacenter, b.Datacenter), cmp.Compare(a.Server, b.Server))
	})
	return out
}
