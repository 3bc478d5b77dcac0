package wan_test

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/wan"
)

func TestJoinAcrossDatacenters(t *testing.T) {
	t.Parallel()
	names := []string{"s1.dc1", "s1.dc2", "s1.dc3"}
	pools := startCluster(t, func(c *wan.Config) {
		c.Tags = map[string]string{"port": "8300"}
	}, names...)
	for _, p := range pools {
		got := p.Members()
		if len(got) != len(names) {
			t.Errorf("%s: len(Members()) = %d, want %d", p.Name, len(got), len(names))
		}
		for _, q := range pools {
			m, _ := p.Member(q.Name)
			_, dc, _ := wan.SplitName(q.Name)
			want := map[string]string{"role": "consul", "dc": dc, "port": "8300"}
			if !maps.Equal(m.Tags, want) {
				t.Errorf("%s: Members()[%q].Tags = %v, want %v", p.Name, q.Name, m.Tags, want)
			}
			if addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))); addr != q.HostPort {
				t.Errorf("%s: Members()[%q] address = %s, want %s", p.Name, q.Name, addr, q.HostPort)
			}
			p.WaitEvent(t, wan.MemberJoin, q.Name, 5*time.Second)
		}
		if lm := p.LocalMember(); lm.Name != p.Name || lm.Status != wan.StatusAlive {
			t.Errorf("LocalMember() = %q %q, want %q alive", lm.Name, lm.Status, p.Name)
		}
	}
}

func TestJoinDefaultPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:8302")
	if err != nil {
		t.Skipf("127.0.0.1:8302 is in use on this machine: %v", err)
	}
	l.Close()
	p := startPool(t, fastConfig("s1", "dc1"))
	// Nothing listens on 127.0.0.1:8302: the error shows which port was
	// added.
	_, err = p.Join(t.Context(), []string{"127.0.0.1"})
	if err == nil || !strings.HasPrefix(err.Error(), "join 127.0.0.1:8302: ") {
		t.Errorf("Join(%q) = %v, want an error for 127.0.0.1:8302", "127.0.0.1", err)
	}
}

// TestFailAndReturn kills a server, waits until the others see it failed,
// restarts it on the same port and waits until it is back.
//
// Without a snapshot the restarted server knows nobody: the others find it
// by themselves, by serf's reconnect (every Timings.ReconnectInterval) or
// because it refutes the "dead" gossip they keep sending it
// (GossipToTheDeadTime). It learns the others only from their next push/pull
// with it, which may take several PushPullIntervals, so only the survivors'
// view is checked; a real server has a snapshot or retry_join_wan. With
// DefaultTimings it measures the WAN goals: failure seen within 10s,
// reconnected within 10s (checked against 20s: a survivor tries a failed
// server with probability failed/alive per interval, so the reconnect time
// has a long tail in a pool of three).
//
// With a snapshot (as the agent runs servers) the restarted server rejoins
// the servers it knew, and both views are checked.
func TestFailAndReturn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		timings                wan.Timings
		snapshot               bool
		failWithin, backWithin time.Duration
	}{
		{"fast", wan.FastTimings(), false, 5 * time.Second, 10 * time.Second},
		{"fast snapshot", wan.FastTimings(), true, 5 * time.Second, 10 * time.Second},
		{"default", wan.DefaultTimings(), false, 12 * time.Second, 20 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "default" && testing.Short() {
				t.Skip("takes about 15s")
			}
			var snap string
			if tc.snapshot {
				snap = filepath.Join(t.TempDir(), "remote.snapshot")
			}
			pools := startCluster(t, func(c *wan.Config) {
				c.Timings = tc.timings
				if c.Datacenter == "dc3" {
					c.SnapshotPath = snap
				}
			}, "s1.dc1", "s1.dc2", "s1.dc3")
			victim := pools[2]
			_, port := victim.Addr()
			if tc.snapshot {
				// The snapshotter sees events before EventCh does: once
				// the victim's reader has both joins, the file has them.
				for _, p := range pools[:2] {
					victim.WaitEvent(t, wan.MemberJoin, p.Name, 5*time.Second)
				}
			}
			start := time.Now()
			if err := victim.Shutdown(); err != nil {
				t.Fatalf("Shutdown() = %v, want nil", err)
			}
			var worst time.Duration
			for _, p := range pools[:2] {
				ev := p.WaitEvent(t, wan.MemberFailed, victim.Name, tc.failWithin)
				worst = max(worst, ev.At.Sub(start))
				p.WaitStatus(t, victim.Name, wan.StatusFailed, time.Second)
			}
			t.Logf("all survivors saw %s fail after %v", victim.Name, worst)

			cfg := fastConfig("s1", "dc3")
			cfg.Timings = tc.timings
			cfg.BindPort = port // a restarted server keeps its gossip port
			cfg.SnapshotPath = snap
			back := startPool(t, cfg)
			start = time.Now()
			for _, p := range pools[:2] {
				p.WaitStatus(t, back.Name, wan.StatusAlive, tc.backWithin)
			}
			t.Logf("survivors saw the restarted %s alive after %v", back.Name, time.Since(start))
			if tc.snapshot {
				for _, p := range pools[:2] {
					back.WaitStatus(t, p.Name, wan.StatusAlive, 5*time.Second)
				}
			}
		})
	}
}

func TestLeave(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "s1.dc1", "s1.dc2", "s2.dc2")
	if err := pools[2].Leave(t.Context()); err != nil {
		t.Fatalf("Leave() = %v, want nil", err)
	}
	for _, p := range pools[:2] {
		p.WaitStatus(t, "s2.dc2", wan.StatusLeft, 5*time.Second)
		p.WaitEvent(t, wan.MemberLeave, "s2.dc2", 5*time.Second)
		if _, ok := p.Events.First(wan.MemberFailed, "s2.dc2"); ok {
			t.Errorf("%s: got MemberFailed for s2.dc2 after a graceful Leave; events %v", p.Name, p.Events.Summary())
		}
	}
}

func TestForceLeave(t *testing.T) {
	t.Parallel()
	for _, prune := range []bool{false, true} {
		t.Run(fmt.Sprintf("prune=%v", prune), func(t *testing.T) {
			t.Parallel()
			pools := startCluster(t, nil, "s1.dc1", "s1.dc2", "s1.dc3")
			// Serf ignores a force-leave whose Lamport time is not past
			// the one at which a server last heard of the member's join:
			// let every pool's clock reach the same time (the joins'
			// news, from the victim's last gossip and the push/pulls
			// after the probes of learned links, has spread) before the
			// victim dies, as it has on a real network long before
			// anyone forces a dead server out.
			wait.Eventually(t, 10*time.Second, func() error {
				var times []string
				for _, p := range pools {
					times = append(times, p.Stats()["member_time"])
				}
				if len(slices.Compact(slices.Clone(times))) != 1 {
					return fmt.Errorf("serf member clocks %v, want them equal", times)
				}
				return nil
			})
			if err := pools[2].Shutdown(); err != nil {
				t.Fatalf("Shutdown() = %v, want nil", err)
			}
			pools[0].WaitStatus(t, "s1.dc3", wan.StatusFailed, 5*time.Second)
			if err := pools[0].ForceLeave("s1.dc3", prune); err != nil {
				t.Fatalf("ForceLeave(%q, %v) = %v, want nil", "s1.dc3", prune, err)
			}
			for _, p := range pools[:2] {
				if prune {
					p.WaitGone(t, "s1.dc3", 10*time.Second)
				} else {
					p.WaitStatus(t, "s1.dc3", wan.StatusLeft, 5*time.Second)
				}
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		p := startPool(t, fastConfig("s1", "dc1"))
		if err := p.ForceLeave("s1", false); !errors.Is(err, wan.ErrUnknownMember) {
			t.Errorf("ForceLeave(%q) = %v, want ErrUnknownMember (WAN names are node.dc)", "s1", err)
		}
	})
}

// startLAN starts a bare lan.Pool named name on 127.0.0.1:0 with fast
// timings, the gossip label label and tags, and returns it with its
// address. With lan.Label it is a LAN pool as the agent runs it; with
// wan.Label, an intruder that speaks the WAN label but is no WAN server.
func startLAN(t *testing.T, name, label string, tags map[string]string) (*lan.Pool, string) {
	t.Helper()
	cfg := lan.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Label = label
	cfg.Timings = lan.FastTimings()
	cfg.Tags = tags
	p, err := lan.New(cfg)
	if err != nil {
		t.Fatalf("lan.New(%q) = %v, want nil", name, err)
	}
	t.Cleanup(func() { p.Shutdown() })
	ip, port := p.Addr()
	return p, net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// TestJoinLANPort: a WAN join aimed at a LAN gossip port (and the reverse)
// fails with a clear error, and neither pool gains a member.
func TestJoinLANPort(t *testing.T) {
	t.Parallel()
	w := startPool(t, fastConfig("s1", "dc1"))
	l, laddr := startLAN(t, "s1", lan.Label, map[string]string{"role": "consul", "dc": "dc1"})

	n, err := w.Join(t.Context(), []string{laddr})
	if n != 0 || !errors.Is(err, wan.ErrLabelMismatch) {
		t.Fatalf("wan Join(%q) = %d, %v, want 0, ErrLabelMismatch", laddr, n, err)
	}
	want := "join " + laddr + `: gossip port of another kind: it refused label "meridian-wan"`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("wan Join(%q) = %q, want prefix %q", laddr, err, want)
	}
	gossiptest.CheckOneLine(t, fmt.Sprintf("wan Join(%q)", laddr), err, laddr)
	t.Logf("wan Join(LAN port) = %v", err)

	n, err = l.Join(t.Context(), []string{w.HostPort})
	if n != 0 || !errors.Is(err, lan.ErrLabelMismatch) {
		t.Fatalf("lan Join(%q) = %d, %v, want 0, ErrLabelMismatch", w.HostPort, n, err)
	}
	gossiptest.CheckOneLine(t, fmt.Sprintf("lan Join(%q)", w.HostPort), err, w.HostPort)

	if got := w.Members(); len(got) != 1 {
		t.Errorf("wan: Members() = %d members after joins across kinds, want 1", len(got))
	}
	if got := l.Members(); len(got) != 1 {
		t.Errorf("lan: Members() = %d members after joins across kinds, want 1", len(got))
	}
}

func TestRefuseNonServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		member  string
		tags    map[string]string
		wantErr string
	}{
		{"client", "c1.dc1", map[string]string{"role": "node", "dc": "dc1"}, `member "c1.dc1" has tag role="node", want "consul"`},
		{"no tags", "x.dc1", nil, `member "x.dc1" has tag role="", want "consul"`},
		{"no dc", "s9.dc1", map[string]string{"role": "consul"}, `member "s9.dc1" has no dc tag`},
		{"LAN name", "s9", map[string]string{"role": "consul", "dc": "dc1"}, `member "s9" of datacenter "dc1" is not named node.dc1`},
		{"wrong dc", "s9.dc2", map[string]string{"role": "consul", "dc": "dc1"}, `member "s9.dc2" of datacenter "dc1" is not named node.dc1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := startPool(t, fastConfig("s1", "dc1"))
			_, addr := startLAN(t, tc.member, wan.Label, tc.tags)
			n, err := w.Join(t.Context(), []string{addr})
			if n != 0 || !errors.Is(err, wan.ErrNotServer) {
				t.Fatalf("Join(%q) = %d, %v, want 0, ErrNotServer", addr, n, err)
			}
			want := "join " + addr + ": members refused: " + tc.wantErr
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Join(%q) = %q, want prefix %q", addr, err, want)
			}
			gossiptest.CheckOneLine(t, fmt.Sprintf("Join(%q)", addr), err, addr)
			if _, ok := w.Member(tc.member); ok {
				t.Errorf("Members() has %q after refusing it", tc.member)
			}
		})
	}
	t.Run("joining a server", func(t *testing.T) {
		t.Parallel()
		// The intruder joins a server: its own Join succeeds (the server
		// answers before it merges), but no server lists it, even after
		// its gossip and push/pulls reached them (memberlist logs each
		// alive message the merge rule refuses).
		pools := startCluster(t, nil, "s1.dc1", "s1.dc2")
		c, _ := startLAN(t, "c1.dc1", wan.Label, map[string]string{"role": "node", "dc": "dc1"})
		if n, err := c.Join(t.Context(), []string{pools[0].HostPort}); n != 1 || err != nil {
			t.Fatalf("intruder Join(%q) = %d, %v, want 1, nil", pools[0].HostPort, n, err)
		}
		for _, p := range pools {
			wait.Eventually(t, 10*time.Second, func() error {
				const refused = "ignoring alive message for 'c1.dc1'"
				if n := p.logs.count(refused); n < 2 {
					return fmt.Errorf("%s: %d log lines %q, want >= 2", p.Name, n, refused)
				}
				return nil
			})
			if _, ok := p.Member("c1.dc1"); ok {
				t.Errorf("%s: Members() has the client c1.dc1", p.Name)
			}
		}
	})
}

func TestCoordinates(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "s1.dc1", "s1.dc2")
	wait.Eventually(t, 10*time.Second, func() error {
		for _, pair := range [][2]*testPool{{pools[0], pools[1]}, {pools[1], pools[0]}} {
			p, q := pair[0], pair[1]
			if _, ok := p.MemberCoordinate(q.Name); !ok {
				return fmt.Errorf("%s: MemberCoordinate(%q) = false, want a coordinate", p.Name, q.Name)
			}
			rtt, ok := p.RTT(q.Name)
			if !ok || rtt <= 0 || rtt > 50*time.Millisecond {
				return fmt.Errorf("%s: RTT(%q) = %v, %v, want 0 < rtt <= 50ms on loopback", p.Name, q.Name, rtt, ok)
			}
		}
		return nil
	})
	if c, err := pools[0].Coordinate(); err != nil || !c.IsValid() {
		t.Errorf("Coordinate() = %+v, %v, want a valid coordinate", c, err)
	}
	rtt, _ := pools[0].RTT("s1.dc2")
	t.Logf("RTT(s1.dc1 -> s1.dc2) on loopback = %v", rtt)
}

func TestEncryptionMismatch(t *testing.T) {
	t.Parallel()
	key1, key2 := make([]byte, 32), make([]byte, 32)
	key2[0] = 1
	c1 := fastConfig("s1", "dc1")
	c1.EncryptKey = key1
	c2 := fastConfig("s1", "dc2")
	c2.EncryptKey = key2
	a, b := startPool(t, c1), startPool(t, c2)
	n, err := a.Join(t.Context(), []string{b.HostPort})
	if n != 0 || !errors.Is(err, wan.ErrEncryptionMismatch) {
		t.Fatalf("Join(%q) = %d, %v, want 0, ErrEncryptionMismatch", b.HostPort, n, err)
	}
	want := "join " + b.HostPort + ": gossip encryption mismatch: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Join(%q) = %q, want prefix %q", b.HostPort, err, want)
	}
	gossiptest.CheckOneLine(t, fmt.Sprintf("Join(%q)", b.HostPort), err, b.HostPort)
	t.Logf("Join with another key = %v", err)
	// The same key joins.
	c3 := fastConfig("s2", "dc2")
	c3.EncryptKey = key2
	c := startPool(t, c3)
	if n, err := c.Join(t.Context(), []string{b.HostPort}); n != 1 || err != nil {
		t.Errorf("Join(%q) with the same key = %d, %v, want 1, nil", b.HostPort, n, err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	busy := startPool(t, fastConfig("busy", "dc1"))
	_, port := busy.Addr()
	inUse := fastConfig("s1", "dc1")
	inUse.BindPort = port
	noDC := fastConfig("s1", "dc1")
	noDC.Datacenter = ""
	tests := []struct {
		name    string
		cfg     wan.Config
		wantErr string
		wantIs  error
	}{
		{"address in use", inUse, "wan pool: bind gossip " + busy.HostPort + ": ", syscall.EADDRINUSE},
		{"no datacenter", noDC, `wan config: datacenter is empty`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := wan.New(tc.cfg)
			gossiptest.CheckNewError(t, p, err, tc.wantErr, tc.wantIs)
		})
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	p := startPool(t, fastConfig("s1", "dc1"))
	if err := p.Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	if err := p.Shutdown(); err != nil {
		t.Errorf("second Shutdown() = %v, want nil", err)
	}
	if _, err := p.Join(t.Context(), []string{"127.0.0.1:1"}); !errors.Is(err, wan.ErrShutdown) {
		t.Errorf("Join after Shutdown = %v, want ErrShutdown", err)
	}
	if err := p.Leave(t.Context()); !errors.Is(err, wan.ErrShutdown) {
		t.Errorf("Leave after Shutdown = %v, want ErrShutdown", err)
	}
}
