package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/meridian/meridian/lan"
)

// The types of the WAN pool are those of the LAN pool; the aliases name
// them in wan's own API, so that its users need not import lan.
type (
	// Member is one server of the WAN pool, named "node.dc".
	Member = lan.Member
	// Status is a member's state as this pool sees it.
	Status = lan.Status
	// Event is one change seen by the pool.
	Event = lan.Event
	// EventType says what an Event reports.
	EventType = lan.EventType
	// Timings are the failure detector and gossip timings.
	Timings = lan.Timings
	// Coordinate is a Vivaldi network coordinate.
	Coordinate = lan.Coordinate
)

// The member states (see lan.Status).
const (
	StatusNone    = lan.StatusNone
	StatusAlive   = lan.StatusAlive
	StatusLeaving = lan.StatusLeaving
	StatusLeft    = lan.StatusLeft
	StatusFailed  = lan.StatusFailed
)

// The event types (see lan.EventType).
const (
	MemberJoin   = lan.MemberJoin
	MemberLeave  = lan.MemberLeave
	MemberFailed = lan.MemberFailed
	MemberUpdate = lan.MemberUpdate
	MemberReap   = lan.MemberReap
	User         = lan.User
	NameConflict = lan.NameConflict
)

// The errors of the pool are lan's, so errors.Is matches either name.
var (
	// ErrShutdown is returned by calls on a Pool after Shutdown.
	ErrShutdown = lan.ErrShutdown
	// ErrUnknownMember is returned by ForceLeave for a name the pool does
	// not know.
	ErrUnknownMember = lan.ErrUnknownMember
	// ErrLabelMismatch is matched by Join's error when the address is a
	// gossip port of another kind, typically a LAN port (8301).
	ErrLabelMismatch = lan.ErrLabelMismatch
	// ErrEncryptionMismatch is matched by Join's error when the pool at
	// the address uses another gossip encryption key, or none.
	ErrEncryptionMismatch = lan.ErrEncryptionMismatch
	// ErrNameConflict is matched by Join's error when another server
	// claims this server's "node.dc" name.
	ErrNameConflict = lan.ErrNameConflict
)

// ErrNotServer is matched by Join's error when the pool joined holds a
// member that is not a server of a datacenter: its tags do not say role
// "consul" and a datacenter, or its name is not "node.<that datacenter>".
// Such members are refused, on Join and in gossip.
var ErrNotServer = errors.New("not a datacenter server")

// checkServer reports why m may not be in the WAN pool, if it may not.
func checkServer(m Member) error {
	if role := m.Tags[tagRole]; role != roleServer {
		return fmt.Errorf("member %q has tag %s=%q, want %q: %w", m.Name, tagRole, role, roleServer, ErrNotServer)
	}
	dc := m.Tags[tagDatacenter]
	if dc == "" {
		return fmt.Errorf("member %q has no %s tag: %w", m.Name, tagDatacenter, ErrNotServer)
	}
	if _, nameDC, ok := SplitName(m.Name); !ok || nameDC != dc {
		return fmt.Errorf("member %q of datacenter %q is not named node.%s: %w", m.Name, dc, dc, ErrNotServer)
	}
	return nil
}

// SplitName splits a WAN member name "node.dc" into its node and datacenter
// at the last '.'; ok is false unless both are non-empty.
func SplitName(name string) (node, dc string, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// Pool is this server's membership in the WAN gossip pool, a lan.Pool with
// the WAN's label, port, timings and merge rule. Create it with New; all
// its methods are safe for concurrent use.
type Pool struct {
	lan   *lan.Pool
	links *links
	log   *slog.Logger

	ctx    context.Context // ends at Shutdown: stops probes and their joins
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New validates cfg, binds the WAN gossip port and starts gossiping as
// Node.Datacenter. It returns once the pool is listening; with a snapshot it
// starts rejoining the servers it knew in the background.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("wan config: %w", err)
	}
	lc := cfg.lanConfig()
	log := slog.New(slog.DiscardHandler)
	if lc.Logger != nil {
		log = slog.New(quietHandler{lc.Logger.Handler()}).With("pool", "wan")
		lc.Logger = log
	}
	links := newLinks(cfg)
	lc.Merge = links.merge
	lp, err := lan.New(lc)
	if err != nil {
		return nil, fmt.Errorf("wan pool: %w", err)
	}
	p := &Pool{lan: lp, links: links, log: log}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if links.learned() {
		for range probeWorkers {
			p.wg.Add(1)
			go p.probeLoop()
		}
	}
	p.wg.Add(1)
	go p.watchLinks()
	return p, nil
}

// probeWorkers is how many probes of servers of unlinked datacenters run
// at once: a probe that gets no answer takes probeTime,
// and a hub hears of every spoke's servers at once.
const probeWorkers = 4

// Join contacts the given servers of the WAN pool ("host" or "host:port",
// port 8302 by default) and merges their view of the pool. It returns how
// many addresses were joined; the error, one line, names each address that
// failed and why, and is nil when at least one succeeded (see lan.Pool.Join).
// An address that is a LAN gossip port fails with ErrLabelMismatch, a pool
// holding members that are not servers with ErrNotServer, another key with
// ErrEncryptionMismatch.
//
// With learned links a server met on Join is admitted once it has answered
// a probe: when the pool joined holds no server that has, Join waits for
// the probes (a few probe timeouts and a join) and tries again each time
// one answers (it may have been another join's), and fails with
// ErrNotLinked if none of the pool's did within probeWait.
func (p *Pool) Join(ctx context.Context, addrs []string) (int, error) {
	deadline := time.Now().Add(p.probeWait())
	for {
		since := p.links.admissions()
		n, err := p.lan.Join(ctx, addrs)
		var ue *unlinkedError
		if n > 0 || !errors.As(err, &ue) || !ue.probing {
			return n, err
		}
		left := time.Until(deadline)
		if left <= 0 || !p.links.wait(ctx, since, left) {
			return n, err
		}
	}
}

// probeWait bounds how long Join waits for a probe: its pings and the
// join that follows.
func (p *Pool) probeWait() time.Duration {
	t := p.links.timings
	return probeTime(t.ProbeTimeout) + t.TCPTimeout + time.Second
}

// Leave leaves the WAN pool gracefully, so that the other servers record
// this one as left rather than failed (see lan.Pool.Leave). Call Shutdown
// afterwards.
func (p *Pool) Leave(ctx context.Context) error {
	return p.lan.Leave(ctx)
}

// ForceLeave marks the failed server name ("node.dc") as left, so that it is
// no longer reconnected to; with prune it is dropped from the member list at
// once (see lan.Pool.ForceLeave).
func (p *Pool) ForceLeave(name string, prune bool) error {
	return p.lan.ForceLeave(name, prune)
}

// Members returns every server this pool knows, itself included, in no
// particular order. SplitName gives each one's datacenter.
func (p *Pool) Members() []Member {
	return p.lan.Members()
}

// LocalMember returns this server's own member.
func (p *Pool) LocalMember() Member {
	return p.lan.LocalMember()
}

// Coordinate returns this server's network coordinate in the WAN pool.
func (p *Pool) Coordinate() (*Coordinate, error) {
	return p.lan.Coordinate()
}

// MemberCoordinate returns the latest known coordinate of the server name
// ("node.dc"), or false if none is known yet.
func (p *Pool) MemberCoordinate(name string) (*Coordinate, bool) {
	return p.lan.MemberCoordinate(name)
}

// RTT returns the estimated round trip time from this server to the server
// name ("node.dc"), or false if its coordinate is not known yet.
func (p *Pool) RTT(name string) (time.Duration, bool) {
	return p.lan.RTT(name)
}

// Addr returns the address other servers reach this one at: the advertised
// address and the real port (after binding port 0).
func (p *Pool) Addr() (net.IP, int) {
	return p.lan.Addr()
}

// Shutdown stops gossiping without leaving: others see this server fail, as
// after a crash. It waits for the pool's goroutines and is safe to call more
// than once.
func (p *Pool) Shutdown() error {
	err := p.lan.Shutdown()
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
	return err
}
