package wan_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/wan"
)

// linkWindow is how long TestHubAndSpoke watches the pools for member-failed
// events once they have formed. The figure is 2 minutes
// (-link-window=2m); the default keeps the package's tests short.
var linkWindow = flag.Duration("link-window", 15*time.Second, "how long TestHubAndSpoke watches for member-failed events")

// linkTimings are the timings of the hub-and-spoke tests: slower than
// FastTimings, so that on a loaded machine a link that exists is not taken
// for a failed one (a probe every 500ms with 250ms to answer, then 2s of
// suspicion), and fast enough that a pool holding a server it cannot reach
// declares it failed within about 3s. Under the race detector, which makes
// gossip's CPU work many times slower, probes are three times slower too
// (CI saw a spoke's probes of the hub fail at load 27 under -race).
func linkTimings() wan.Timings {
	t := wan.FastTimings()
	slow := time.Duration(1)
	if wait.Race {
		slow = 3
	}
	t.ProbeInterval = slow * 500 * time.Millisecond
	t.ProbeTimeout = slow * 250 * time.Millisecond
	t.SuspicionMult = 4
	return t
}

// startBridged starts one pool per "node.dc" name on bridge b with the link
// timings; links gives each datacenter's Config.Links (none: learned).
func startBridged(t *testing.T, b *testcluster.Bridge, links map[string][]string, names ...string) []*testPool {
	t.Helper()
	pools := make([]*testPool, len(names))
	for i, name := range names {
		node, dc, _ := wan.SplitName(name)
		cfg := fastConfig(node, dc)
		cfg.Timings = linkTimings()
		cfg.Links = links[dc]
		cfg.LinkProbeInterval = time.Second
		cfg.WrapTransport = b.Endpoint(name).WrapTransport
		pools[i] = startPool(t, cfg)
		b.Register(name, pools[i].HostPort)
	}
	return pools
}

// dcOf is the datacenter of a WAN member name.
func dcOf(name string) string {
	_, dc, _ := wan.SplitName(name)
	return dc
}

// failedEvents lists the member-failed events p has delivered, as
// "member at time".
func failedEvents(p *testPool) []string {
	var out []string
	for _, ev := range p.Events.All() {
		if ev.Type != wan.MemberFailed {
			continue
		}
		for _, m := range ev.Members {
			out = append(out, m.Name+" at "+ev.At.Format("15:04:05.000"))
		}
	}
	return out
}

// TestHubAndSpoke federates a hub dc1 (two servers) and five spokes, dc2
// (two servers) to dc6, through dc1 while every path between two spokes is
// cut (gossip UDP and TCP, on the bridge) from the start: dc1's pool holds
// everyone, each spoke's only dc1 and itself, and over linkWindow no pool
// delivers a single member-failed event, with links learned by probing and
// with links configured (on the spokes, or everywhere). The control case
// configures the full mesh over the same cuts: the spokes then hold each
// other and do mark each other failed (memberlist's indirect probes often
// go through the hub and succeed, but with five spokes often through other
// spokes that cannot reach either), which is what links prevent.
func TestHubAndSpoke(t *testing.T) {
	t.Parallel()
	names := []string{"s1.dc1", "s2.dc1", "s1.dc2", "s2.dc2", "s1.dc3", "s1.dc4", "s1.dc5", "s1.dc6"}
	spokeDCs := []string{"dc2", "dc3", "dc4", "dc5", "dc6"}
	spokes, hub, mesh := map[string][]string{}, map[string][]string{"dc1": spokeDCs}, map[string][]string{"dc1": spokeDCs}
	for _, dc := range spokeDCs {
		spokes[dc], hub[dc] = []string{"dc1"}, []string{"dc1"}
		mesh[dc] = []string{"dc1"}
		for _, other := range spokeDCs {
			if other != dc {
				mesh[dc] = append(mesh[dc], other)
			}
		}
	}
	tests := []struct {
		name    string
		links   map[string][]string
		control bool
	}{
		{"learned", nil, false},
		{"configured spokes", spokes, false},
		{"configured", hub, false},
		{"control: mesh configured over the cuts", mesh, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := testcluster.NewBridge()
			pools := startBridged(t, b, tc.links, names...)
			for _, x := range names {
				for _, y := range names {
					if dcOf(x) != "dc1" && dcOf(y) != "dc1" && dcOf(x) != dcOf(y) {
						b.Cut(x, y)
					}
				}
			}
			seed := pools[0].HostPort
			for _, p := range pools[1:] {
				if n, err := p.Join(t.Context(), []string{seed}); n != 1 || err != nil {
					t.Fatalf("%s: Join(%q) = %d, %v, want 1, nil", p.Name, seed, n, err)
				}
			}
			if tc.control {
				// The control shows the watch below can fail. Whether a
				// cut-off member is declared failed before it refutes
				// (through dc1, its indirect probes and its gossip) is a
				// race of timings; under the race detector's slower gossip
				// CI saw none within a minute, so there it is only logged
				// (wait.Figure), and the plain run asserts it.
				start := time.Now()
				window := max(*linkWindow, time.Minute)
				tick := time.NewTicker(100 * time.Millisecond) // a polling interval, not synchronisation
				defer tick.Stop()
				for time.Since(start) < window {
					for _, p := range pools {
						if f := failedEvents(p); len(f) > 0 {
							t.Logf("control: after %v %s delivered member-failed for %v", time.Since(start), p.Name, f)
							return
						}
					}
					select {
					case <-tick.C:
					case <-t.Context().Done():
						return
					}
				}
				wait.Figure(t, false, "control: no pool delivered a member-failed event within %v, over a mesh configured across the cuts", window)
				return
			}
			// Who sees whom: dc1 everyone, a spoke dc1 and itself.
			sees := func(p *testPool, name string) bool {
				from, to := dcOf(p.Name), dcOf(name)
				return from == "dc1" || to == "dc1" || from == to
			}
			formed := time.Now()
			for _, p := range pools {
				for _, q := range pools {
					if sees(p, q.Name) {
						p.WaitStatus(t, q.Name, wan.StatusAlive, 20*time.Second)
					}
				}
			}
			t.Logf("pools formed in %v", time.Since(formed))

			start := time.Now()
			deadline := start.Add(*linkWindow)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				for _, p := range pools {
					if f := failedEvents(p); len(f) > 0 {
						t.Fatalf("%s delivered member-failed for %v after %v of the window; events %v", p.Name, f, time.Since(start), p.Events.Summary())
					}
					for _, m := range p.Members() {
						if !sees(p, m.Name) {
							t.Fatalf("%s holds %s (%s), a server of a datacenter it does not link to", p.Name, m.Name, m.Status)
						}
					}
				}
				<-tick.C
			}
			total := 0
			for _, p := range pools {
				total += len(failedEvents(p))
			}
			t.Logf("member-failed events over %v in %d pools: %d", time.Since(start).Round(time.Second), len(pools), total)

			for _, p := range pools {
				want, wantUnreached := []string{"dc1"}, slices.DeleteFunc(slices.Clone(spokeDCs), func(dc string) bool { return dc == dcOf(p.Name) })
				if dcOf(p.Name) == "dc1" {
					want, wantUnreached = spokeDCs, nil
				}
				if tc.links[dcOf(p.Name)] != nil {
					wantUnreached = nil // configured links probe nothing
				}
				var got []string
				for _, l := range p.Links() {
					got = append(got, l.Datacenter)
					if l.Alive != l.Servers || l.Missing {
						t.Errorf("%s: link %+v, want all its servers alive", p.Name, l)
					}
					if l.Configured != slices.Contains(tc.links[dcOf(p.Name)], l.Datacenter) {
						t.Errorf("%s: link %+v: Configured = %v, want %v", p.Name, l, l.Configured, !l.Configured)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: Links() = %v, want %v", p.Name, got, want)
				}
				if got := slices.Sorted(maps.Keys(p.Unreached())); !slices.Equal(got, wantUnreached) {
					t.Errorf("%s: Unreached() = %v, want %v", p.Name, got, wantUnreached)
				}
			}
			// memberlist's warning for each refused alive message is a
			// debug line: with these links refusals are routine.
			for _, p := range pools {
				if n := p.logs.count("WARN gossip source=memberlist text=ignoring alive message"); n != 0 {
					t.Errorf("%s: %d warnings of ignored alive messages, want them at debug level", p.Name, n)
				}
			}
			if n := pools[2].logs.count("DEBUG gossip source=memberlist text=ignoring alive message"); n == 0 {
				t.Errorf("%s: no debug line for the refused alive messages of other spokes' servers", pools[2].Name)
			}
			t.Logf("%s: links %q, unreached %q", pools[2].Name, pools[2].Stats()["links"], pools[2].Stats()["links_unreached"])
		})
	}
}

// TestLinksFullMesh: where every datacenter reaches every other, learned
// links and configured ones form the full mesh, as the pool did before
// links existed.
func TestLinksFullMesh(t *testing.T) {
	t.Parallel()
	for _, configured := range []bool{false, true} {
		t.Run(fmt.Sprintf("configured=%v", configured), func(t *testing.T) {
			t.Parallel()
			dcs := []string{"dc1", "dc2", "dc3"}
			pools := startCluster(t, func(c *wan.Config) {
				if configured {
					for _, dc := range dcs {
						if dc != c.Datacenter {
							c.Links = append(c.Links, dc)
						}
					}
				}
			}, "s1.dc1", "s1.dc2", "s2.dc2", "s1.dc3")
			for _, p := range pools {
				var got []string
				for _, l := range p.Links() {
					got = append(got, l.Datacenter)
				}
				want := slices.DeleteFunc(slices.Clone(dcs), func(dc string) bool { return dc == dcOf(p.Name) })
				if !slices.Equal(got, want) {
					t.Errorf("%s: Links() = %v, want %v", p.Name, got, want)
				}
				if u := p.Unreached(); len(u) != 0 {
					t.Errorf("%s: Unreached() = %v, want none", p.Name, u)
				}
				wantSource := map[bool]string{false: "learned", true: "configured"}[configured]
				if got := p.Stats()["links_source"]; got != wantSource {
					t.Errorf("%s: Stats()[links_source] = %q, want %q", p.Name, got, wantSource)
				}
			}
		})
	}
}

// TestJoinUnlinked: a Join whose pool holds only servers of datacenters
// this one does not link to fails with ErrNotLinked naming the datacenter,
// and neither pool (each configured to link only to dc1) gains a member.
func TestJoinUnlinked(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("s1", "dc2")
	cfg.Links = []string{"dc1"}
	p := startPool(t, cfg)
	// dc3 links only to dc1 too: with learned links it would probe s1.dc2,
	// find it answering and admit it (a learned link is one-sided).
	ocfg := fastConfig("s1", "dc3")
	ocfg.Links = []string{"dc1"}
	other := startPool(t, ocfg)
	n, err := p.Join(t.Context(), []string{other.HostPort})
	if n != 0 || !errors.Is(err, wan.ErrNotLinked) {
		t.Fatalf("Join(%q) = %d, %v, want 0, ErrNotLinked", other.HostPort, n, err)
	}
	want := `server "s1.dc3": datacenter dc3 is not linked (not in federation.links)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Join(%q) = %q, want it to say %q", other.HostPort, err, want)
	}
	gossiptest.CheckOneLine(t, fmt.Sprintf("Join(%q)", other.HostPort), err, other.HostPort)
	t.Logf("Join of an unlinked datacenter = %v", err)
	if got := len(p.Members()); got != 1 {
		t.Errorf("Members() = %d members after the refused join, want 1", got)
	}
	if _, ok := other.Member(p.Name); ok {
		t.Errorf("the dc3 pool lists %s", p.Name)
	}
}

// TestLinkMissing: a configured link to a datacenter none of whose servers
// ever joins is warned about, naming it, once LinkWarnAfter has passed, and
// Links and Stats show it missing; a link that is up is not.
func TestLinkMissing(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("s1", "dc2")
	cfg.Links = []string{"dc1", "dc9"}
	cfg.LinkWarnAfter = 500 * time.Millisecond
	p := startPool(t, cfg)
	hub := startPool(t, fastConfig("s1", "dc1"))
	if n, err := p.Join(t.Context(), []string{hub.HostPort}); n != 1 || err != nil {
		t.Fatalf("Join(%q) = %d, %v, want 1, nil", hub.HostPort, n, err)
	}
	start := time.Now()
	wait.Eventually(t, 10*time.Second, func() error {
		if n := p.logs.count("datacenter=dc9"); n != 1 {
			return fmt.Errorf("%d log lines name dc9, want 1", n)
		}
		return nil
	})
	t.Logf("missing link warned about %v after the join", time.Since(start))
	if n := p.logs.count("federation.links names a datacenter none of whose servers has joined"); n != 1 {
		t.Errorf("%d warnings of a missing link, want 1 (dc9 only)", n)
	}
	want := []wan.Link{
		{Datacenter: "dc1", Configured: true, Servers: 1, Alive: 1},
		{Datacenter: "dc9", Configured: true, Missing: true},
	}
	if got := p.Links(); !slices.Equal(got, want) {
		t.Errorf("Links() = %+v, want %+v", got, want)
	}
	if got := p.Stats()["links_missing"]; got != "dc9" {
		t.Errorf("Stats()[links_missing] = %q, want dc9", got)
	}
	if got := p.Stats()["links"]; got != "dc1 (configured, 1/1 alive), dc9 (configured, 0/0 alive)" {
		t.Errorf("Stats()[links] = %q", got)
	}
}

// TestLearnedLinkHeals: with learned links, spokes cut from each other stay
// unlinked; once the cut heals they link by themselves within a few
// LinkProbeIntervals (gossip from the hub mentions them again, the probe
// answers), and Unreached empties.
func TestLearnedLinkHeals(t *testing.T) {
	t.Parallel()
	b := testcluster.NewBridge()
	pools := startBridged(t, b, nil, "s1.dc1", "s1.dc2", "s1.dc3")
	b.Cut("s1.dc2", "s1.dc3")
	for _, p := range pools[1:] {
		if n, err := p.Join(t.Context(), []string{pools[0].HostPort}); n != 1 || err != nil {
			t.Fatalf("%s: Join = %d, %v, want 1, nil", p.Name, n, err)
		}
	}
	wait.Eventually(t, 10*time.Second, func() error {
		if _, ok := pools[1].Unreached()["dc3"]; !ok {
			return fmt.Errorf("s1.dc2: Unreached() = %v, want dc3", pools[1].Unreached())
		}
		return nil
	})
	if _, ok := pools[1].Member("s1.dc3"); ok {
		t.Fatalf("s1.dc2 holds s1.dc3 across the cut")
	}
	b.Heal()
	healed := time.Now()
	pools[1].WaitStatus(t, "s1.dc3", wan.StatusAlive, 20*time.Second)
	pools[2].WaitStatus(t, "s1.dc2", wan.StatusAlive, 20*time.Second)
	t.Logf("spokes linked %v after the heal (LinkProbeInterval 1s)", time.Since(healed))
	for _, p := range pools {
		if u := p.Unreached(); len(u) != 0 {
			t.Errorf("%s: Unreached() = %v after the heal, want none", p.Name, u)
		}
	}
}
