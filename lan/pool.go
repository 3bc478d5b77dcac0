package lan

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/meridian/meridian/internal/ratelog"
)

// ErrShutdown is returned by calls on a Pool after Shutdown.
var ErrShutdown = errors.New("pool is shut down")

// UserEventSizeLimit bounds a user event's name and payload together, in
// bytes, as UserEvent sends them. Above serf's 512 so that an envelope
// around a 512-byte user payload fits; well below memberlist's 1400-byte
// gossip packet, which a broadcast must fit in whole.
const UserEventSizeLimit = 1024

// ErrUnknownMember is returned by ForceLeave for a name the pool does not
// know.
var ErrUnknownMember = errors.New("no member with that name")

// Pool is this agent's membership in the LAN gossip pool. Create it with New;
// all its methods are safe for concurrent use.
type Pool struct {
	cfg       Config
	log       *slog.Logger
	serf      *serf.Serf
	ml        *memberlist.Config // its Keyring is the pool's
	conflicts *conflicts
	guard     *mergeGuard // nil without Config.Merge

	stop         chan struct{} // closed by Shutdown after serf stopped
	mu           sync.Mutex    // guards shut and wg.Add against Shutdown
	shut         bool
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, binds the gossip port and starts gossiping. It returns
// once the pool is listening; with a snapshot it starts rejoining the members
// it knew in the background. The error names the address when the bind
// fails.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lan config: %w", err)
	}
	cfg.Tags = maps.Clone(cfg.Tags)
	cfg.EncryptKey = append([]byte(nil), cfg.EncryptKey...)
	if len(cfg.EncryptKey) == 0 {
		cfg.EncryptKey = nil
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Merge != nil {
		// Merge sees this member too (memberlist vets its own alive
		// message): a refusal would leave the pool without itself.
		self := Member{Name: cfg.NodeName, Tags: maps.Clone(cfg.Tags), Status: StatusNone}
		if err := cfg.Merge([]Member{self}); err != nil {
			return nil, fmt.Errorf("lan config: merge refuses this member %q: %w", cfg.NodeName, err)
		}
	}
	bind := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort))
	if cfg.BindPort != 0 {
		// memberlist's bind error loses its cause; probe first for a
		// precise one (errors.Is(err, syscall.EADDRINUSE)).
		if err := probeBind(bind); err != nil {
			return nil, fmt.Errorf("bind gossip %s: %w", bind, err)
		}
	}

	p := &Pool{
		cfg:       cfg,
		log:       cfg.Logger,
		conflicts: newConflicts(cfg.NodeName),
		stop:      make(chan struct{}),
	}
	if cfg.Merge != nil {
		p.guard = &mergeGuard{merge: cfg.Merge}
	}
	logger := log.New(&logBridge{log: cfg.Logger, conflicts: p.conflicts, drops: ratelog.New(cfg.Logger, 10*time.Second)}, "", 0)

	sc := serfConfig(cfg, logger)
	if err := keyring(cfg, sc.MemberlistConfig); err != nil {
		return nil, err
	}
	p.ml = sc.MemberlistConfig
	if p.guard != nil {
		sc.Merge = p.guard
	}
	if cfg.WrapTransport != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{cfg.BindAddr},
			BindPort:  cfg.BindPort,
			Logger:    logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start gossip on %s: %w", bind, err)
		}
		sc.MemberlistConfig.Transport = cfg.WrapTransport(nt)
	}
	var events chan serf.Event
	if cfg.EventCh != nil {
		events = make(chan serf.Event, 1024)
		sc.EventCh = events
	}
	s, err := serf.Create(sc)
	if err != nil {
		if t := sc.MemberlistConfig.Transport; t != nil {
			t.Shutdown()
		}
		return nil, fmt.Errorf("start gossip on %s: %w", bind, err)
	}
	p.serf = s
	if events != nil {
		p.wg.Add(1)
		go p.forward(events)
	}
	ip, port := p.Addr()
	p.log.Info("lan pool started", "node", cfg.NodeName, "addr", net.JoinHostPort(ip.String(), strconv.Itoa(port)), "label", cfg.Label)
	return p, nil
}

// serfConfig maps cfg onto serf's and memberlist's configurations.
func serfConfig(cfg Config, logger *log.Logger) *serf.Config {
	t := cfg.Timings
	mc := memberlist.DefaultLANConfig()
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort // memberlist fills it in when BindPort is 0
	}
	mc.SecretKey = cfg.EncryptKey
	mc.GossipVerifyIncoming = !cfg.EncryptAcceptPlain
	mc.GossipVerifyOutgoing = !cfg.EncryptSendPlain
	mc.Label = cfg.Label
	mc.Logger = logger
	mc.ProbeInterval = t.ProbeInterval
	mc.ProbeTimeout = t.ProbeTimeout
	mc.SuspicionMult = t.SuspicionMult
	mc.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	mc.GossipInterval = t.GossipInterval
	mc.GossipNodes = t.GossipNodes
	mc.GossipToTheDeadTime = t.GossipToTheDeadTime
	mc.PushPullInterval = t.PushPullInterval
	mc.TCPTimeout = t.TCPTimeout
	mc.RetransmitMult = t.RetransmitMult
	mc.DeadNodeReclaimTime = t.DeadNodeReclaimTime

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	sc.Tags = maps.Clone(cfg.Tags)
	sc.MemberlistConfig = mc
	sc.Logger = logger
	sc.LogOutput = nil
	sc.ReconnectTimeout = cfg.ReconnectTimeout
	sc.TombstoneTimeout = cfg.TombstoneTimeout
	sc.SnapshotPath = cfg.SnapshotPath
	if cfg.EncryptKey != nil {
		sc.KeyringFile = cfg.KeyringFile
	}
	sc.RejoinAfterLeave = cfg.RejoinAfterLeave
	sc.ReapInterval = t.ReapInterval
	sc.ReconnectInterval = t.ReconnectInterval
	sc.BroadcastTimeout = t.BroadcastTimeout
	sc.LeavePropagateDelay = t.LeavePropagateDelay
	sc.UserEventSizeLimit = UserEventSizeLimit
	// Serf's resolution votes and shuts down the loser, which in a small
	// pool can be both claimants, or the healthy member. We report the
	// conflict instead (Join's error, NameConflict events) and keep the
	// member known first.
	sc.EnableNameConflictResolution = false
	return sc
}

// probeBind checks that the TCP and UDP gossip ports at addr are free.
func probeBind(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	u, err := net.ListenPacket("udp", addr)
	l.Close()
	if err != nil {
		return err
	}
	u.Close()
	return nil
}

// closed reports whether Shutdown was called.
func (p *Pool) closed() bool {
	select {
	case <-p.stop:
		return true
	default:
		return p.serf.State() == serf.SerfShutdown
	}
}

// Join contacts the given members ("host" or "host:port", port
// Config.JoinPort, by default 8301, when none is given) and merges their view
// of the pool. It returns how many addresses were joined; the error names
// each address that failed and why, and is nil when at least one succeeded
// and no name conflict was found. A conflict over this pool's own name
// returns a *NameConflictError (see ErrNameConflict): Shutdown the pool
// then, do not Leave it (a leave would be taken for the other member's). An
// address whose pool has another label (Config.Label) fails with a
// *LabelMismatchError (see ErrLabelMismatch), and members refused by
// Config.Merge with Merge's error, wrapped. Each address takes at most
// Timings.TCPTimeout (plus up to 2s to confirm a label mismatch); ctx is
// checked between addresses.
func (p *Pool) Join(ctx context.Context, addrs []string) (int, error) {
	if p.closed() {
		return 0, fmt.Errorf("join: %w", ErrShutdown)
	}
	if len(addrs) == 0 {
		return 0, errors.New("join: no addresses")
	}
	var errs joinErrors
	joined := 0
	for _, a := range addrs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("join %s: %w", a, err))
			break
		}
		addr, err := withDefaultPort(a, p.joinPort())
		if err != nil {
			errs = append(errs, fmt.Errorf("join %s: %w", a, err))
			continue
		}
		before := p.conflicts.seq.Load()
		var refusals uint64
		if p.guard != nil {
			refusals = p.guard.seq.Load()
		}
		n, err := p.serf.Join([]string{addr}, true)
		if c := p.conflicts.lastLocal(); p.conflicts.seq.Load() != before && c != nil {
			errs = append(errs, fmt.Errorf("join %s: %w", addr, c))
			continue
		}
		if err != nil && n == 0 {
			errs = append(errs, fmt.Errorf("join %s: %w", addr, p.joinError(addr, err, refusals)))
			continue
		}
		joined++
	}
	p.log.Debug("lan join", "addrs", addrs, "joined", joined, "errors", len(errs))
	if len(errs) == 0 {
		return joined, nil
	}
	var conflict *NameConflictError
	if joined > 0 && !errors.As(errs, &conflict) {
		// Consul's rule: joining one address is success.
		p.log.Warn("lan join: some addresses failed", "error", errs.Error())
		return joined, nil
	}
	return joined, errs
}

// joinPort is the port added to Join addresses without one.
func (p *Pool) joinPort() int {
	if p.cfg.JoinPort != 0 {
		return p.cfg.JoinPort
	}
	return DefaultPort
}

// withDefaultPort returns addr as host:port, adding port when it has none.
func withDefaultPort(addr string, port int) (string, error) {
	if addr == "" {
		return "", errors.New("empty address")
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("bad address %q", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// joinErrors is the one-line error of a Join, one entry per failed address.
type joinErrors []error

func (e joinErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e joinErrors) Unwrap() []error { return e }

// flatten turns memberlist's multi-line multierror into one line, dropping
// its "failed to join <addr>: " prefix that Join already says.
func flatten(err error) error {
	w, ok := err.(interface{ WrappedErrors() []error })
	if !ok {
		return err
	}
	var s []string
	for _, e := range w.WrappedErrors() {
		msg := e.Error()
		if rest, ok := strings.CutPrefix(msg, "failed to join "); ok {
			if _, after, ok := strings.Cut(rest, ": "); ok {
				msg = after
			}
		}
		s = append(s, msg)
	}
	return errors.New(strings.Join(s, "; "))
}

// Leave leaves the pool gracefully: it broadcasts the leave, waits for it to
// go out (Timings.BroadcastTimeout) and stays up Timings.LeavePropagateDelay
// answering probes so that others record "left", not "failed". It returns
// early with ctx's error, the leave going on in the background until
// Shutdown. Call Shutdown afterwards. Leave refuses after a conflict over
// this pool's own name, since the leave would be taken for the other
// member's.
func (p *Pool) Leave(ctx context.Context) error {
	if p.closed() {
		return fmt.Errorf("leave: %w", ErrShutdown)
	}
	if c := p.conflicts.lastLocal(); c != nil {
		return fmt.Errorf("leave: %w", c)
	}
	done := make(chan error, 1)
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return fmt.Errorf("leave: %w", ErrShutdown)
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		done <- p.serf.Leave()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("leave: %w", err)
		}
		p.log.Info("left lan pool", "node", p.cfg.NodeName)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("leave: %w", ctx.Err())
	}
}

// ForceLeave marks the failed member node as left, so that it is no longer
// reconnected to and is reaped after TombstoneTimeout; with prune it is
// removed from the member list at once (a MemberReap event). It waits up to
// Timings.BroadcastTimeout for the news to go out. Forcing out an alive
// member has no lasting effect: it refutes.
func (p *Pool) ForceLeave(node string, prune bool) error {
	if p.closed() {
		return fmt.Errorf("force leave %q: %w", node, ErrShutdown)
	}
	known := false
	for _, m := range p.serf.Members() {
		if m.Name == node {
			known = true
			break
		}
	}
	if !known {
		return fmt.Errorf("force leave %q: %w", node, ErrUnknownMember)
	}
	var err error
	if prune {
		err = p.serf.RemoveFailedNodePrune(node)
	} else {
		err = p.serf.RemoveFailedNode(node)
	}
	if err != nil {
		return fmt.Errorf("force leave %q: %w", node, err)
	}
	return nil
}

// Members returns every member this pool knows, itself included, in no
// particular order.
func (p *Pool) Members() []Member {
	ms := p.serf.Members()
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = memberOf(m)
	}
	return out
}

// LocalMember returns this pool's own member.
func (p *Pool) LocalMember() Member {
	return memberOf(p.serf.LocalMember())
}

// SetTags replaces this member's tags (copied) and gossips them; others see
// a MemberUpdate. It waits up to Timings.BroadcastTimeout for the update to
// go out.
func (p *Pool) SetTags(tags map[string]string) error {
	if p.closed() {
		return fmt.Errorf("set tags: %w", ErrShutdown)
	}
	if err := p.serf.SetTags(maps.Clone(tags)); err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	return nil
}

// UserEvent gossips a user event to every member, itself included (a User
// event). name and payload together, and the message serf encodes from
// them, are limited to UserEventSizeLimit bytes. With coalesce,
// receivers may deliver only the latest of events with the same name.
func (p *Pool) UserEvent(name string, payload []byte, coalesce bool) error {
	if p.closed() {
		return fmt.Errorf("user event %q: %w", name, ErrShutdown)
	}
	if err := p.serf.UserEvent(name, payload, coalesce); err != nil {
		return fmt.Errorf("user event %q: %w", name, err)
	}
	return nil
}

// Addr returns the address other members reach this one at: the advertised
// address and the real port (after binding port 0).
func (p *Pool) Addr() (net.IP, int) {
	n := p.serf.Memberlist().LocalNode()
	return append(net.IP(nil), n.Addr...), int(n.Port)
}

// Ping sends one gossip ping (UDP, over the pool's transport, as the
// failure detector's probes go) to the member name at addr ("ip:port"),
// which need not be in this pool, and returns the round trip. It fails when
// no ack came within Timings.ProbeTimeout: addr is unreachable, is not a
// pool with this one's label and key, or is not name. As on any probe,
// memberlist piggybacks gossip on the ping and its ack, so each side may
// hear of the other's news (the sender's own alive message included),
// which Config.Merge vets as any gossip.
func (p *Pool) Ping(name, addr string) (time.Duration, error) {
	if p.closed() {
		return 0, fmt.Errorf("ping %s: %w", name, ErrShutdown)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, fmt.Errorf("ping %s at %s: %w", name, addr, err)
	}
	// The round trip is timed here: memberlist's own figure starts after
	// the send returns and ends when the ack was read, so on loopback the
	// ack can be read first and the figure comes out negative.
	start := time.Now()
	if _, err := p.serf.Memberlist().Ping(name, ua); err != nil {
		return 0, fmt.Errorf("ping %s at %s: %w", name, addr, err)
	}
	return time.Since(start), nil
}

// Exchange swaps member lists with the pool at addr ("ip:port") and merges
// its view, through Config.Merge, as serf's reconnect of a failed member
// does: unlike Join it announces nothing (no join message with a new
// Lamport time goes out), so it can be repeated freely. It takes at most
// Timings.TCPTimeout.
func (p *Pool) Exchange(addr string) error {
	if p.closed() {
		return fmt.Errorf("exchange with %s: %w", addr, ErrShutdown)
	}
	if _, err := p.serf.Memberlist().Join([]string{addr}); err != nil {
		return fmt.Errorf("exchange with %s: %w", addr, flatten(err))
	}
	return nil
}

// Shutdown stops gossiping and closes the sockets without leaving: others
// see this member fail, as after a crash. It waits for the pool's goroutines
// and is safe to call more than once.
func (p *Pool) Shutdown() error {
	p.shutdownOnce.Do(func() {
		p.mu.Lock()
		p.shut = true
		p.mu.Unlock()
		if err := p.serf.Shutdown(); err != nil {
			p.shutdownErr = fmt.Errorf("shutdown lan pool: %w", err)
		}
		close(p.stop)
		p.wg.Wait()
		p.log.Info("lan pool stopped", "node", p.cfg.NodeName)
	})
	return p.shutdownErr
}
