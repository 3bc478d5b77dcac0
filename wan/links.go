package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotLinked is matched by Join's error when no server met belongs to a
// datacenter this one links to: none is of a datacenter in Config.Links,
// or, with links learned, none answered its probe.
var ErrNotLinked = errors.New("datacenter not linked")

// notLinked is the text that marks a refusal of a server of an unlinked
// datacenter; memberlist logs each refused alive message, and the pool's
// log handler turns those lines into debug ones (see quietHandler).
const notLinked = "is not linked"

// unlinkedError refuses member, a server of datacenter dc, which this
// pool does not link to; probing says a probe of it is queued or running
// (learned links).
type unlinkedError struct {
	member, dc string
	probing    bool
}

func (e *unlinkedError) Error() string {
	if e.probing {
		return fmt.Sprintf("server %q: datacenter %s %s yet (probing it)", e.member, e.dc, notLinked)
	}
	return fmt.Sprintf("server %q: datacenter %s %s (not in federation.links)", e.member, e.dc, notLinked)
}

func (e *unlinkedError) Unwrap() error { return ErrNotLinked }

// A probe gives up on a server after probeTries pings and at least
// probeFor of trying: one lost datagram, or a loaded machine's late
// answers to short probe timeouts, do not keep a datacenter unlinked.
// probeFor is 3 s because at 10-15x oversubscription a second of 100 ms
// pings (the test timings) went unanswered in 42 of 200 race runs.
const (
	probeTries = 3
	probeFor   = 3 * time.Second
)

// probeTime bounds how long a probe of a server that does not answer takes
// with probe timeout timeout.
func probeTime(timeout time.Duration) time.Duration {
	return max(probeTries*timeout, probeFor) + timeout
}

// failure counts the unanswered probes in a row of a datacenter's servers.
type failure struct {
	at time.Time // the latest
	n  int
}

// backoff is how long after f the datacenter's servers are not probed
// again: probeFor after the first failure, doubling up to every (the link
// probe interval), so that a probe lost while a machine starts or is
// loaded does not keep a datacenter unlinked for a whole interval.
func (f failure) backoff(every time.Duration) time.Duration {
	d := probeFor
	for i := 1; i < f.n && d < every; i++ {
		d *= 2
	}
	return min(d, every)
}

// candidate is a server of an unlinked datacenter to probe.
type candidate struct {
	name, dc, addr string
}

// links decides which servers of other datacenters the pool admits and,
// when none are configured, learns the links by probing. Its merge runs
// under memberlist's locks: it only reads and writes its own state and
// queues probes without blocking; the probes run in the pool's goroutines.
type links struct {
	local      string
	configured map[string]bool // nil: links are learned
	probeEvery time.Duration
	warnAfter  time.Duration
	timings    Timings
	started    time.Time
	queue      chan candidate

	mu        sync.Mutex
	admitted  map[string]time.Time // learned: server name -> when it answered
	pending   map[string]bool      // queued or being probed
	failed    map[string]failure   // datacenter -> its servers' latest unanswered probes
	unreached map[string]string    // learned: datacenter -> why it is not linked
	missing   map[string]bool      // configured datacenters warned about
	granted   uint64               // admissions so far
	changed   chan struct{}        // closed and replaced at every change
}

func newLinks(cfg Config) *links {
	l := &links{
		local:      cfg.Datacenter,
		probeEvery: cfg.LinkProbeInterval,
		warnAfter:  cfg.LinkWarnAfter,
		timings:    cfg.Timings,
		started:    time.Now(),
		queue:      make(chan candidate, 256),
		admitted:   map[string]time.Time{},
		pending:    map[string]bool{},
		failed:     map[string]failure{},
		unreached:  map[string]string{},
		missing:    map[string]bool{},
		changed:    make(chan struct{}),
	}
	if len(cfg.Links) > 0 {
		l.configured = make(map[string]bool, len(cfg.Links))
		for _, dc := range cfg.Links {
			l.configured[dc] = true
		}
	}
	return l
}

// learned reports whether links are learned rather than configured.
func (l *links) learned() bool { return l.configured == nil }

// merge is the pool's lan.Config.Merge. One member is an alive message
// (or a join of a one-server pool): it is admitted only if its datacenter
// is linked. Several are a join: it goes ahead if any of them is admitted,
// and memberlist then offers each alive one to merge alone, which keeps
// the others out.
func (l *links) merge(members []Member) error {
	for _, m := range members {
		if err := checkServer(m); err != nil {
			return err
		}
	}
	var refusal error
	for _, m := range members {
		err := l.admit(m)
		if err == nil {
			refusal = nil
			break
		}
		if refusal == nil {
			refusal = err
		}
	}
	return refusal
}

// admit says whether m, a server, may be in the pool, and queues a probe
// of it when links are learned and it has not answered one.
func (l *links) admit(m Member) error {
	_, dc, _ := SplitName(m.Name)
	if dc == l.local {
		return nil
	}
	if !l.learned() {
		if l.configured[dc] {
			return nil
		}
		return &unlinkedError{member: m.Name, dc: dc}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.admitted[m.Name]; ok {
		return nil
	}
	if m.Status != StatusLeft && m.Addr != nil {
		l.enqueueLocked(candidate{name: m.Name, dc: dc, addr: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))})
	}
	return &unlinkedError{member: m.Name, dc: dc, probing: true}
}

// enqueueLocked queues a probe of c unless one is queued or running, or a
// probe of a server of its datacenter failed less than its backoff ago (a
// hub brings every spoke's servers to every spoke: one unanswered probe
// per datacenter and interval is enough). l.mu is held.
func (l *links) enqueueLocked(c candidate) {
	if l.pending[c.name] {
		return
	}
	if f, ok := l.failed[c.dc]; ok && time.Since(f.at) < f.backoff(l.probeEvery) {
		return
	}
	select {
	case l.queue <- c:
		l.pending[c.name] = true
	default: // full: gossip will mention it again
	}
}

// answered records that c answered its probe: it is admitted.
func (l *links) answered(c candidate) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first = !l.linkedLocked(c.dc)
	l.admitted[c.name] = time.Now()
	l.granted++
	delete(l.failed, c.dc)
	delete(l.unreached, c.dc)
	return first
}

// unanswered records that c did not answer its probe; first is true when
// that makes its datacenter newly unreached.
func (l *links) unanswered(c candidate, err error) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed[c.dc] = failure{at: time.Now(), n: l.failed[c.dc].n + 1}
	if l.linkedLocked(c.dc) {
		return false
	}
	_, known := l.unreached[c.dc]
	l.unreached[c.dc] = err.Error()
	return !known
}

// done ends c's probe.
func (l *links) done(c candidate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, c.name)
	close(l.changed)
	l.changed = make(chan struct{})
}

// linkedLocked reports whether a server of dc has answered a probe.
func (l *links) linkedLocked(dc string) bool {
	for name := range l.admitted {
		if _, d, _ := SplitName(name); d == dc {
			return true
		}
	}
	return false
}

// admissions returns how many servers have been admitted so far.
func (l *links) admissions() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.granted
}

// wait waits until a server is admitted after the first since admissions
// returned, or no probe is queued or running, or timeout passes or ctx
// ends, and reports whether one was.
func (l *links) wait(ctx context.Context, since uint64, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		l.mu.Lock()
		granted, pending, changed := l.granted, len(l.pending), l.changed
		l.mu.Unlock()
		if granted > since || pending == 0 {
			return granted > since
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// forget drops the admissions of servers no longer in the pool (reaped,
// or pruned by ForceLeave) that answered more than probeEvery ago, so
// that they are probed again if they come back.
func (l *links) forget(present map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, at := range l.admitted {
		if !present[name] && time.Since(at) > l.probeEvery {
			delete(l.admitted, name)
		}
	}
	for dc, f := range l.failed {
		if time.Since(f.at) > 2*l.probeEvery {
			delete(l.failed, dc)
		}
	}
}

// Link is a datacenter this server gossips with directly over the WAN:
// its servers are in the pool.
type Link struct {
	Datacenter string
	// Configured is true when the datacenter is named in Config.Links
	// (federation.links), false when the link was learned by probing.
	Configured bool
	// Servers and Alive count its servers in the pool, and those alive.
	Servers, Alive int
	// Missing is true for a configured link none of whose servers has
	// been in the pool for Config.LinkWarnAfter: a misspelt name, or a
	// datacenter that has not joined.
	Missing bool
}

// Links lists the datacenters this server links to, this one's own
// excepted, by name. With configured links, every configured datacenter
// is listed, with Servers 0 if none of its servers is in the pool.
func (p *Pool) Links() []Link {
	byDC := map[string]*Link{}
	for dc := range p.links.configured {
		byDC[dc] = &Link{Datacenter: dc, Configured: true}
	}
	for _, m := range p.lan.Members() {
		_, dc, _ := SplitName(m.Name)
		if dc == p.links.local {
			continue
		}
		l := byDC[dc]
		if l == nil {
			l = &Link{Datacenter: dc}
			byDC[dc] = l
		}
		l.Servers++
		if m.Status == StatusAlive {
			l.Alive++
		}
	}
	p.links.mu.Lock()
	for dc := range p.links.missing {
		if l := byDC[dc]; l != nil && l.Servers == 0 {
			l.Missing = true
		}
	}
	p.links.mu.Unlock()
	out := make([]Link, 0, len(byDC))
	for _, dc := range slices.Sorted(maps.Keys(byDC)) {
		out = append(out, *byDC[dc])
	}
	return out
}

// Unreached lists, with learned links, the datacenters this server heard
// of through gossip but could not reach directly, each with why (its last
// probe's error): their servers are kept out of the pool, and requests
// for them need a route through a linked datacenter.
func (p *Pool) Unreached() map[string]string {
	p.links.mu.Lock()
	defer p.links.mu.Unlock()
	return maps.Clone(p.links.unreached)
}

// probeLoop runs the probes queued by merge until the pool stops.
func (p *Pool) probeLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case c := <-p.links.queue:
			p.probe(c)
		}
	}
}

// probe pings c (see probeTries); if it answers it is admitted and
// member lists are exchanged with it, so that it is in the member list now
// rather than at the next gossip about it. The exchange is no Join: a join
// would announce this server again with a new Lamport time, and a
// ForceLeave by a server whose clock has not seen it yet would be ignored.
func (p *Pool) probe(c candidate) {
	defer p.links.done(c)
	var err error
	start := time.Now()
	for try := 0; try < probeTries || time.Since(start) < probeFor; try++ {
		if _, err = p.lan.Ping(c.name, c.addr); err == nil || p.ctx.Err() != nil {
			break
		}
	}
	if p.ctx.Err() != nil {
		return
	}
	if err != nil {
		if p.links.unanswered(c, err) {
			p.log.Info("datacenter not linked: its server did not answer a direct probe; it is left out of this server's WAN pool",
				"datacenter", c.dc, "server", c.name, "addr", c.addr, "error", err)
		}
		return
	}
	if p.links.answered(c) {
		p.log.Info("datacenter linked: its server answered a direct probe", "datacenter", c.dc, "server", c.name, "addr", c.addr)
	}
	if err := p.lan.Exchange(c.addr); err != nil {
		p.log.Debug("push/pull with a probed server failed; gossip will bring it", "server", c.name, "error", err)
	}
}

// watchLinks warns about configured links that stay without servers and
// forgets the admissions of servers gone from the pool.
func (p *Pool) watchLinks() {
	defer p.wg.Done()
	every := max(min(p.links.probeEvery, p.links.warnAfter)/4, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		present := map[string]bool{}
		dcs := map[string]bool{}
		for _, m := range p.lan.Members() {
			present[m.Name] = true
			_, dc, _ := SplitName(m.Name)
			dcs[dc] = true
		}
		p.links.forget(present)
		if time.Since(p.links.started) < p.links.warnAfter {
			continue
		}
		for _, dc := range slices.Sorted(maps.Keys(p.links.configured)) {
			p.links.mu.Lock()
			warned := p.links.missing[dc]
			switch {
			case !dcs[dc] && !warned:
				p.links.missing[dc] = true
			case dcs[dc] && warned:
				delete(p.links.missing, dc)
			}
			p.links.mu.Unlock()
			switch {
			case !dcs[dc] && !warned:
				p.log.Warn("federation.links names a datacenter none of whose servers has joined the WAN pool; check the name and that datacenter's retry_join_wan",
					"datacenter", dc, "after", p.links.warnAfter)
			case dcs[dc] && warned:
				p.log.Info("linked datacenter joined the WAN pool", "datacenter", dc)
			}
		}
	}
}

// linkStats are the link keys of Stats: links ("dc1 (configured, 3/3
// alive), ..."), links_missing and links_unreached (datacenter names,
// comma-separated), links_source ("configured" or "learned").
func (p *Pool) linkStats() map[string]string {
	var ls, missing []string
	for _, l := range p.Links() {
		src := "learned"
		if l.Configured {
			src = "configured"
		}
		ls = append(ls, fmt.Sprintf("%s (%s, %d/%d alive)", l.Datacenter, src, l.Alive, l.Servers))
		if l.Missing {
			missing = append(missing, l.Datacenter)
		}
	}
	source := "configured"
	if p.links.learned() {
		source = "learned"
	}
	return map[string]string{
		"links":           strings.Join(ls, ", "),
		"links_missing":   strings.Join(missing, ", "),
		"links_unreached": strings.Join(slices.Sorted(maps.Keys(p.Unreached())), ", "),
		"links_source":    source,
	}
}

// quietHandler makes debug lines of memberlist's warnings about refused
// servers of unlinked datacenters: with hub-and-spoke links every push/pull
// with the hub brings the other spokes' servers, and each refusal is
// expected, not news.
type quietHandler struct {
	slog.Handler
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		quiet := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "text" && strings.Contains(a.Value.String(), notLinked) {
				quiet = true
				return false
			}
			return true
		})
		if quiet {
			if !h.Handler.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			r.Level = slog.LevelDebug
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
