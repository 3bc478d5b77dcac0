package federation

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/rpc"
)

// simNode is one datacenter of a simulated federation: one server with a
// real QUIC listener, rpc.Server and Forwarder (route exchange and relays
// as package server wires them), whose WAN membership is its neighbours
// only, as a WAN pool restricted to links would give it.
type simNode struct {
	dc     string
	mute   atomic.Bool  // every datagram in or out dropped: a silent failure
	delay  atomic.Int64 // nanoseconds every datagram sent waits: a longer path
	srv    *rpc.Server
	ln     *rpc.QUICListener
	fed    *Forwarder
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// methodWhoami answers the datacenter of the server that ran it.
const methodWhoami = "Sim.Whoami"

// startSimNode starts the server of dc, with federation.timeout timeout.
func startSimNode(tb testing.TB, dc string, timeout time.Duration) *simNode {
	tb.Helper()
	tlsCfg, err := rpc.EphemeralTLS("server." + dc)
	if err != nil {
		tb.Fatal(err)
	}
	n := &simNode{dc: dc, srv: rpc.NewServer(rpc.ServerConfig{})}
	qc := rpc.DefaultQUICConfig()
	qc.TLS = tlsCfg
	qc.ListenPacket = func(network, addr string) (net.PacketConn, error) {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		return &mutedConn{PacketConn: pc, mute: &n.mute, delay: &n.delay}, nil
	}
	ln, err := rpc.ListenQUIC("127.0.0.1:0", qc)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Datacenter, cfg.Node, cfg.TLS = dc, "server."+dc, tlsCfg
	cfg.Timeout = timeout
	cfg.QUIC.ListenPacket = qc.ListenPacket
	fed, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n.ln, n.fed = ln, fed
	rpc.Register(n.srv, MethodRoutes, func(ctx context.Context, args *RoutesRequest, reply *Advertisement) error {
		*reply = *fed.Table().Advertise(ctx.Done(), args.Datacenter, args.Index, min(args.Wait, RefreshInterval))
		return nil
	})
	rpc.Register(n.srv, MethodRelay, func(ctx context.Context, args *RelayRequest, reply *RelayReply) error {
		return fed.Relay(ctx, args, reply, n.srv.Dispatch)
	})
	rpc.Register(n.srv, methodWhoami, func(_ context.Context, _ *rpc.Query[string], reply *string) error {
		*reply = dc
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Go(func() { n.srv.ServeQUIC(ln) })
	n.wg.Go(func() { fed.Run(ctx) })
	tb.Cleanup(n.stop)
	return n
}

// stop kills the node: its links and listener close as a crashed
// process's would, and its neighbours are not told.
func (n *simNode) stop() {
	n.once.Do(func() {
		n.cancel()
		n.ln.Close()
		n.srv.Shutdown()
		n.fed.Close()
		n.wg.Wait()
	})
}

// mutedConn drops every datagram while mute is set, and sends each one
// delay late.
type mutedConn struct {
	net.PacketConn
	mute  *atomic.Bool
	delay *atomic.Int64
}

func (c *mutedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.mute.Load() {
		return len(p), nil
	}
	if d := time.Duration(c.delay.Load()); d > 0 {
		b := slices.Clone(p)
		time.AfterFunc(d, func() { c.PacketConn.WriteTo(b, addr) })
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *mutedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.mute.Load() {
			return n, addr, err
		}
	}
}

// sim is a federation of simNodes linked along edges.
type sim struct {
	nodes []*simNode
	links map[int][]int
}

func (s *sim) server(i int) Server {
	n := s.nodes[i]
	return Server{Name: "server." + n.dc, Datacenter: n.dc, Addr: n.ln.Addr().String(), Alive: true}
}

// startSim starts n datacenters, then links them along edges. Their
// federation.timeout is 5s: paths of 25 hops on a machine whose CPUs are
// shared many times over, and the figures measured are the routes', not
// the relays' latency.
func startSim(tb testing.TB, n int, edges [][2]int) (*sim, time.Time) {
	return startSimTimeout(tb, n, edges, 5*time.Second)
}

// startSimTimeout is startSim with another federation.timeout.
func startSimTimeout(tb testing.TB, n int, edges [][2]int, timeout time.Duration) (*sim, time.Time) {
	tb.Helper()
	s := &sim{links: map[int][]int{}}
	for i := range n {
		s.nodes = append(s.nodes, startSimNode(tb, fmt.Sprintf("dc%02d", i+1), timeout))
	}
	for _, e := range edges {
		s.links[e[0]] = append(s.links[e[0]], e[1])
		s.links[e[1]] = append(s.links[e[1]], e[0])
	}
	last := time.Now() // the last server started
	for i := range s.nodes {
		s.update(i)
	}
	return s, last
}

// update gives node i its neighbours as WAN membership.
func (s *sim) update(i int) {
	var servers []Server
	for _, j := range s.links[i] {
		servers = append(servers, s.server(j))
	}
	s.nodes[i].fed.Update(servers)
}

func hub(n int) [][2]int {
	var e [][2]int
	for i := 1; i < n; i++ {
		e = append(e, [2]int{0, i})
	}
	return e
}

func ring(n int) [][2]int {
	var e [][2]int
	for i := range n {
		e = append(e, [2]int{i, (i + 1) % n})
	}
	return e
}

// converged reports the first node (of those alive) lacking a route to
// another alive one.
func (s *sim) converged(alive func(int) bool) error {
	for i, n := range s.nodes {
		if !alive(i) {
			continue
		}
		for j, m := range s.nodes {
			if i == j || !alive(j) {
				continue
			}
			rs := n.fed.Table().Lookup(m.dc)
			if len(rs) == 0 {
				return fmt.Errorf("%s has no route to %s", n.dc, m.dc)
			}
			for k, d := range s.nodes {
				if !alive(k) && slices.Contains(rs[0].Path, d.dc) {
					return fmt.Errorf("%s routes to %s through failed %s: %v", n.dc, m.dc, d.dc, rs[0].Path)
				}
			}
		}
	}
	return nil
}

// reachAll asks every alive node for every other alive datacenter's
// name, through whatever relays its routes take.
func (s *sim) reachAll(alive func(int) bool) error {
	type pair struct{ i, j int }
	work := make(chan pair)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for p := range work {
				var got string
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := s.nodes[p.i].fed.Forward(ctx, s.nodes[p.j].dc, methodWhoami, &rpc.Query[string]{}, &got)
				cancel()
				if err == nil && got != s.nodes[p.j].dc {
					err = fmt.Errorf("answered by %s", got)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("%s -> %s: %w", s.nodes[p.i].dc, s.nodes[p.j].dc, err):
					default:
					}
				}
			}
		})
	}
	for i := range s.nodes {
		for j := range s.nodes {
			if i != j && alive(i) && alive(j) {
				work <- pair{i, j}
			}
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitFor retries fn until it passes or timeout, and reports how long it
// took from since.
func waitFor(tb testing.TB, since time.Time, timeout time.Duration, fn func() error) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", time.Since(since).Round(time.Millisecond), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func all(int) bool { return true }

// rssMB is this process's resident memory, from /proc (0 elsewhere).
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// simResult is what one simulation measured.
type simResult struct {
	// converge is from the last server's start to every DC routing to
	// every other; reroute from a ring DC's death (its links closed) to
	// every other routing around it; silent from another one going
	// silent (no datagram in or out) to the same; heal from that one
	// speaking again to every DC routing to every other again.
	converge, reroute, silent, heal time.Duration
	rssMB                           float64
}

// runSim federates n datacenters as topo ("hub": dc01 linked to every
// other; "ring"), checks that every one reaches every other, and on the
// ring kills one datacenter and waits until the others route around it.
func runSim(tb testing.TB, n int, topo string) simResult {
	tb.Helper()
	runtime.GC()
	base := rssMB()
	edges := hub(n)
	if topo == "ring" {
		edges = ring(n)
	}
	s, last := startSim(tb, n, edges)
	var res simResult
	res.converge = waitFor(tb, last, 60*time.Second, func() error { return s.converged(all) })
	if err := s.reachAll(all); err != nil {
		tb.Fatalf("%d DCs, %s, converged after %v: %v", n, topo, res.converge, err)
	}
	runtime.GC()
	res.rssMB = rssMB() - base
	if topo != "ring" {
		return res
	}
	// One DC goes silent, as a crashed host or a cut cable: only QUIC's
	// idle timeout tells its neighbours. Then it comes back.
	mid := n / 2
	s.nodes[mid].mute.Store(true)
	silenced := time.Now()
	res.silent = waitFor(tb, silenced, 60*time.Second, func() error { return s.converged(func(i int) bool { return i != mid }) })
	s.nodes[mid].mute.Store(false)
	res.heal = waitFor(tb, time.Now(), 60*time.Second, func() error { return s.converged(all) })
	// Kill dc01; its ring neighbours find out from their links alone.
	s.nodes[0].stop()
	killed := time.Now()
	up := func(i int) bool { return i != 0 }
	res.reroute = waitFor(tb, killed, 60*time.Second, func() error { return s.converged(up) })
	// The two neighbours of the dead DC reach each other the long way.
	var got string
	if err := s.nodes[1].fed.Forward(context.Background(), s.nodes[n-1].dc, methodWhoami, &rpc.Query[string]{}, &got); err != nil || got != s.nodes[n-1].dc {
		tb.Fatalf("after rerouting, %s -> %s = %q, %v", s.nodes[1].dc, s.nodes[n-1].dc, got, err)
	}
	if err := s.reachAll(up); err != nil {
		tb.Fatalf("after rerouting around dc01: %v", err)
	}
	return res
}

// TestSimulation federates 6 datacenters of one server each, as a hub and
// as a ring: every one reaches every other through relays, and the ring
// routes around a dead datacenter. MERIDIAN_SIM_DCS=50 (or any size) runs
// the large one too; it is off by default, as 50 federations' worth of
// QUIC links and exchanges is a lot for a shared CI machine.
func TestSimulation(t *testing.T) {
	sizes := []int{6}
	if v := os.Getenv("MERIDIAN_SIM_DCS"); v != "" {
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 3 {
				t.Fatalf("MERIDIAN_SIM_DCS=%q: want sizes of 3 or more, comma-separated", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		for _, topo := range []string{"hub", "ring"} {
			t.Run(fmt.Sprintf("%s-%d", topo, n), func(t *testing.T) {
				res := runSim(t, n, topo)
				t.Logf("%d DCs, %s: converged %v after the last server started, reroute %v (dead DC), %v (silent DC, healed in %v), RSS +%.1f MB (%.2f MB per DC)",
					n, topo, res.converge.Round(time.Millisecond), res.reroute.Round(time.Millisecond), res.silent.Round(time.Millisecond), res.heal.Round(time.Millisecond), res.rssMB, res.rssMB/float64(n))
				wait.Figure(t, res.converge <= 10*time.Second, "converged after %v, want within 10s", res.converge)
				if topo == "ring" {
					wait.Figure(t, res.reroute <= 5*time.Second, "rerouted after %v, want within 5s", res.reroute)
				}
				if topo == "ring" {
					// QUIC finds a silent peer out within KeepAlivePeriod +
					// MaxIdleTimeout (3.25s); the withdrawal travels on in
					// milliseconds (a second or two across 50 DCs on a
					// loaded machine).
					wait.Figure(t, res.silent <= 5*time.Second, "rerouted around a silent DC after %v, want within 5s", res.silent)
				}
			})
		}
	}
}

// BenchmarkSimulation reports convergence and reroute time and memory of
// simulated federations of 10, 25 and 50 datacenters on a ring
// (-bench Simulation -benchtime 1x).
func BenchmarkSimulation(b *testing.B) {
	for _, n := range []int{10, 25, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				res := runSim(b, n, "ring")
				b.ReportMetric(res.converge.Seconds(), "converge-s")
				b.ReportMetric(res.reroute.Seconds(), "reroute-s")
				b.ReportMetric(res.silent.Seconds(), "reroute-silent-s")
				b.ReportMetric(res.heal.Seconds(), "heal-s")
				b.ReportMetric(res.rssMB, "rss-MB")
			}
		})
	}
}

// TestRelayAddsOneHop measures what a relay costs: dc2 and dc3 each link
// to dc1 only, and dc3's datagrams take 10ms more (a longer path). A read
// of dc3 from dc2, relayed by dc1, takes what a read of dc1 takes plus the
// dc1-dc3 hop (what the same read takes from dc1) plus a fraction of a
// millisecond: one more stream on a link that is up, no new handshake and
// no round trip of its own. Calls are taken in turn, and the figure is the
// median over the turns of relayed - direct - hop, which a loaded
// machine's scheduling, adding milliseconds to a call now and then, moves
// little.
func TestRelayAddsOneHop(t *testing.T) {
	const delay = 10 * time.Millisecond
	s, _ := startSim(t, 3, hub(3))
	waitFor(t, time.Now(), 30*time.Second, func() error { return s.converged(all) })
	if err := s.reachAll(all); err != nil {
		t.Fatal(err)
	}
	s.nodes[2].delay.Store(int64(delay))
	call := func(from, to int) time.Duration {
		t.Helper()
		var got string
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := s.nodes[from].fed.Forward(ctx, s.nodes[to].dc, methodWhoami, &rpc.Query[string]{}, &got)
		took := time.Since(start)
		if err != nil || got != s.nodes[to].dc {
			t.Fatalf("%s -> %s = %q, %v", s.nodes[from].dc, s.nodes[to].dc, got, err)
		}
		return took
	}
	if rs := s.nodes[1].fed.Table().Lookup("dc03"); len(rs) == 0 || rs[0].NextHop != "dc01" {
		t.Fatalf("dc02's routes to dc03 = %+v, want through dc01", rs)
	}
	const n = 300
	var direct, relayed, hop, over []time.Duration
	for range n {
		d, r, h := call(1, 0), call(1, 2), call(0, 2)
		direct, relayed, hop, over = append(direct, d), append(relayed, r), append(hop, h), append(over, r-d-h)
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	d, r, h, o := median(direct), median(relayed), median(hop), median(over)
	t.Logf("dc02 -> dc01 %v, dc02 -> dc01 -> dc03 %v, dc01 -> dc03 %v (with %v added): a relayed read adds the hop plus %v (medians of %d turns; load %s)",
		d, r, h, delay, o, n, loadAvg())
	wait.Figure(t, o < 500*time.Microsecond, "a relayed read took the hop plus %v, want under 0.5ms", o)
}

// loadAvg is the machine's load average, from /proc ("?" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// TestSilentRelayWithdrawnOnFirstTimeout: on a ring of four, the
// neighbour dc01 relays through to reach dc03 (dc02 or dc04) falls silent.
// The first request from dc01 for dc03 times out its share there and goes
// the other way round; the silent relay then fails a probe, and dc01
// closes its link and withdraws the routes through it, within the
// request's share and a probe's timeout (2s with the default
// federation.timeout) of the request, before QUIC's idle timeout could
// have (MaxIdleTimeout - KeepAlivePeriod at the soonest, 2.75s).
func TestSilentRelayWithdrawnOnFirstTimeout(t *testing.T) {
	s, _ := startSimTimeout(t, 4, ring(4), DefaultConfig().Timeout)
	a := s.nodes[0].fed
	var rs []Route
	// Converged, dc01 holds both ways round the ring to dc03 (the second
	// may come an exchange after every datacenter is reachable).
	waitFor(t, time.Now(), 30*time.Second, func() error {
		if err := s.converged(all); err != nil {
			return err
		}
		if rs = a.Table().Lookup("dc03"); len(rs) != 2 {
			return fmt.Errorf("dc01's routes to dc03 = %+v, want two, through dc02 and dc04", rs)
		}
		return nil
	})
	relay, other := rs[0].NextHop, rs[1].NextHop
	silent := slices.IndexFunc(s.nodes, func(n *simNode) bool { return n.dc == relay })
	s.nodes[silent].mute.Store(true)
	silenced := time.Now()
	var got string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Forward(ctx, "dc03", methodWhoami, &rpc.Query[string]{}, &got); err != nil || got != "dc03" {
		t.Fatalf("dc01 -> dc03 with %s silent = %q, %v, want dc03's answer through %s", relay, got, err, other)
	}
	answered := time.Since(silenced)
	took := waitFor(t, silenced, 10*time.Second, func() error {
		if a.Table().Linked(relay) {
			return fmt.Errorf("dc01's route exchange with %s is still up", relay)
		}
		if rs := a.Table().Lookup("dc03"); len(rs) == 0 || slices.Contains(rs[0].Path, relay) {
			return fmt.Errorf("dc01's routes to dc03 = %+v, want none through %s", rs, relay)
		}
		return nil
	})
	t.Logf("dc01 -> dc03 answered through %s %v after %s fell silent; its routes withdrawn after %v (load %s)", other, answered.Round(time.Millisecond), relay, took.Round(time.Millisecond), loadAvg())
	if !a.Table().Linked(other) {
		t.Errorf("dc01's link to %s went down too", other)
	}
	q := rpc.DefaultQUICConfig()
	quic := q.MaxIdleTimeout - q.KeepAlivePeriod
	wait.Figure(t, took < quic, "%s's routes withdrawn %v after it fell silent, want within the request's share and a probe (2s), before QUIC's idle timeout could (%v)", relay, took, quic)
}
