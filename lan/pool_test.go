package lan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

func TestJoinMembersAndTags(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c"}
	pools := startCluster(t, func(c *lan.Config) {
		c.Tags = map[string]string{"role": "node", "name": c.NodeName}
	}, names...)
	for _, p := range pools {
		got := p.Members()
		if len(got) != len(names) {
			t.Errorf("%s: len(Members()) = %d, want %d", p.Name, len(got), len(names))
		}
		for _, q := range pools {
			m, _ := p.Member(q.Name)
			want := map[string]string{"role": "node", "name": q.Name}
			if !maps.Equal(m.Tags, want) {
				t.Errorf("%s: Members()[%q].Tags = %v, want %v", p.Name, q.Name, m.Tags, want)
			}
			if addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))); addr != q.HostPort {
				t.Errorf("%s: Members()[%q] address = %s, want %s", p.Name, q.Name, addr, q.HostPort)
			}
			if m.Status.Code() != 1 {
				t.Errorf("%s: Members()[%q].Status.Code() = %d, want 1", p.Name, q.Name, m.Status.Code())
			}
		}
		if lm := p.LocalMember(); lm.Name != p.Name || lm.Status != lan.StatusAlive {
			t.Errorf("LocalMember() = %q %q, want %q alive", lm.Name, lm.Status, p.Name)
		}
		ip, port := p.Addr()
		if !ip.Equal(net.IPv4(127, 0, 0, 1)) || port == 0 {
			t.Errorf("%s: Addr() = %v, %d, want 127.0.0.1 and a real port", p.Name, ip, port)
		}
	}
	// Returned members are copies.
	m := pools[0].LocalMember()
	m.Tags["role"] = "changed"
	if got := pools[0].LocalMember().Tags["role"]; got != "node" {
		t.Errorf("LocalMember().Tags[role] after changing a copy = %q, want %q", got, "node")
	}
	// Every pool saw a MemberJoin for every other.
	for _, p := range pools {
		for _, q := range pools {
			p.WaitEvent(t, lan.MemberJoin, q.Name, 5*time.Second)
		}
	}
}

func TestSetTags(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "a", "b", "c")
	tags := map[string]string{"dc": "dc1", "role": "consul"}
	if err := pools[2].SetTags(tags); err != nil {
		t.Fatalf("SetTags(%v) = %v, want nil", tags, err)
	}
	tags["dc"] = "mutated after SetTags"
	want := map[string]string{"dc": "dc1", "role": "consul"}
	for _, p := range pools[:2] {
		ev := p.WaitEvent(t, lan.MemberUpdate, "c", 5*time.Second)
		if got := ev.Members[0].Tags; !maps.Equal(got, want) {
			t.Errorf("%s: MemberUpdate tags = %v, want %v", p.Name, got, want)
		}
		m, _ := p.Member("c")
		if !maps.Equal(m.Tags, want) {
			t.Errorf("%s: Members()[c].Tags = %v, want %v", p.Name, m.Tags, want)
		}
	}
}

func TestLeave(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, steady, "a", "b", "c")
	if err := pools[2].Leave(t.Context()); err != nil {
		t.Fatalf("Leave() = %v, want nil", err)
	}
	for _, p := range pools[:2] {
		p.WaitStatus(t, "c", lan.StatusLeft, 5*time.Second)
		p.WaitEvent(t, lan.MemberLeave, "c", 5*time.Second)
		if _, ok := p.Events.First(lan.MemberFailed, "c"); ok {
			t.Errorf("%s: got MemberFailed for c after a graceful Leave; events %v", p.Name, p.Events.Summary())
		}
	}
	if err := pools[2].Leave(t.Context()); err != nil {
		t.Errorf("second Leave() = %v, want nil", err)
	}
}

func TestShutdownIsFailure(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "a", "b", "c")
	start := time.Now()
	if err := pools[2].Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	if err := pools[2].Shutdown(); err != nil {
		t.Errorf("second Shutdown() = %v, want nil", err)
	}
	for _, p := range pools[:2] {
		p.WaitStatus(t, "c", lan.StatusFailed, 3*time.Second)
		ev := p.WaitEvent(t, lan.MemberFailed, "c", time.Second)
		t.Logf("%s saw c fail after %v", p.Name, ev.At.Sub(start))
	}
	// Calls on a shut down pool fail with ErrShutdown.
	calls := []struct {
		name string
		call func() error
	}{
		{"Join", func() error { _, err := pools[2].Join(t.Context(), []string{pools[0].HostPort}); return err }},
		{"Leave", func() error { return pools[2].Leave(t.Context()) }},
		{"SetTags", func() error { return pools[2].SetTags(nil) }},
		{"ForceLeave", func() error { return pools[2].ForceLeave("a", false) }},
		{"UserEvent", func() error { return pools[2].UserEvent("x", nil, false) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, lan.ErrShutdown) {
				t.Errorf("%s after Shutdown = %v, want ErrShutdown", c.name, err)
			}
		})
	}
}

// TestFailureDetectionDefaultTimings measures how long a pool with
// DefaultTimings takes to see a member killed without leaving as failed:
// every survivor must see it within 5s. Three runs (one with -short), each
// in a fresh pool, run in parallel.
func TestFailureDetectionDefaultTimings(t *testing.T) {
	t.Parallel()
	runs := []int{3, 5, 10} // pool sizes
	if testing.Short() {
		runs = runs[:1]
	}
	results := make(chan time.Duration, len(runs))
	t.Run("runs", func(t *testing.T) {
		for i, size := range runs {
			t.Run(fmt.Sprintf("run%d_size%d", i, size), func(t *testing.T) {
				t.Parallel()
				names := make([]string, size)
				for j := range names {
					names[j] = fmt.Sprintf("n%d", j)
				}
				pools := startCluster(t, func(c *lan.Config) { c.Timings = lan.DefaultTimings() }, names...)
				victim := pools[size-1]
				start := time.Now()
				if err := victim.Shutdown(); err != nil {
					t.Fatalf("Shutdown() = %v, want nil", err)
				}
				var worst time.Duration
				for _, p := range pools[:size-1] {
					ev := p.WaitEvent(t, lan.MemberFailed, victim.Name, 20*time.Second)
					worst = max(worst, ev.At.Sub(start))
				}
				t.Logf("pool of %d: all survivors saw the failure after %v", size, worst)
				wait.Figure(t, worst <= 5*time.Second, "failure detection in a pool of %d took %v, want <= 5s", size, worst)
				results <- worst
			})
		}
	})
	close(results)
	var all []time.Duration
	for d := range results {
		all = append(all, d)
	}
	slices.Sort(all)
	if len(all) > 0 {
		t.Logf("failure detection with DefaultTimings: median %v of %v", all[len(all)/2], all)
	}
}

func TestReap(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, func(c *lan.Config) { c.ReconnectTimeout = 500 * time.Millisecond }, "a", "b", "c")
	if err := pools[2].Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	for _, p := range pools[:2] {
		failed := p.WaitEvent(t, lan.MemberFailed, "c", 5*time.Second)
		reaped := p.WaitEvent(t, lan.MemberReap, "c", 5*time.Second)
		if !reaped.At.After(failed.At) {
			t.Errorf("%s: MemberReap at %v, not after MemberFailed at %v", p.Name, reaped.At, failed.At)
		}
		p.WaitGone(t, "c", time.Second)
	}
}

func TestForceLeave(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		prune bool
	}{
		{"mark left", false},
		{"prune", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pools := startCluster(t, nil, "a", "b", "c")
			if err := pools[2].Shutdown(); err != nil {
				t.Fatalf("Shutdown() = %v, want nil", err)
			}
			pools[0].WaitStatus(t, "c", lan.StatusFailed, 5*time.Second)
			if err := pools[0].ForceLeave("c", tc.prune); err != nil {
				t.Fatalf("ForceLeave(%q, %v) = %v, want nil", "c", tc.prune, err)
			}
			for _, p := range pools[:2] {
				if tc.prune {
					p.WaitGone(t, "c", 10*time.Second)
					p.WaitEvent(t, lan.MemberReap, "c", time.Second)
				} else {
					p.WaitStatus(t, "c", lan.StatusLeft, 5*time.Second)
					p.WaitEvent(t, lan.MemberLeave, "c", time.Second)
				}
			}
		})
	}
	t.Run("unknown node", func(t *testing.T) {
		t.Parallel()
		p := startPool(t, fastConfig("solo"))
		if err := p.ForceLeave("nobody", false); !errors.Is(err, lan.ErrUnknownMember) {
			t.Errorf("ForceLeave(%q) = %v, want ErrUnknownMember", "nobody", err)
		}
	})
}

func TestSnapshotRejoin(t *testing.T) {
	t.Parallel()
	snap := filepath.Join(t.TempDir(), "local.snapshot")
	// Nobody reconnects to failed members nor syncs state on its own
	// within the test, so only b's snapshot can bring it back.
	noReconnect := func(c *lan.Config) {
		c.Timings.ReconnectInterval = time.Hour
		c.Timings.PushPullInterval = time.Hour
	}
	pools := startCluster(t, func(c *lan.Config) {
		noReconnect(c)
		if c.NodeName == "b" {
			c.SnapshotPath = snap
		}
	}, "a", "b", "c")
	_, port := pools[1].Addr()
	// The snapshotter sees events before EventCh does, and Shutdown
	// flushes it: once b's reader has both joins, the file will list them.
	pools[1].WaitEvent(t, lan.MemberJoin, "a", 5*time.Second)
	pools[1].WaitEvent(t, lan.MemberJoin, "c", 5*time.Second)
	if err := pools[1].Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	if err := snapshotHas(snap, pools[0].HostPort, pools[2].HostPort); err != nil {
		t.Fatalf("after Shutdown: %v", err)
	}

	for _, p := range []*testPool{pools[0], pools[2]} {
		p.WaitStatus(t, "b", lan.StatusFailed, 5*time.Second)
	}

	cfg := fastConfig("b")
	noReconnect(&cfg)
	cfg.SnapshotPath = snap
	cfg.BindPort = port // a restarted agent keeps its gossip port
	b := startPool(t, cfg)
	for _, name := range []string{"a", "c"} {
		b.WaitStatus(t, name, lan.StatusAlive, 10*time.Second)
	}
	for _, p := range []*testPool{pools[0], pools[2]} {
		p.WaitStatus(t, "b", lan.StatusAlive, 10*time.Second)
	}
}

func TestEncryption(t *testing.T) {
	t.Parallel()
	key1 := []byte("0123456789abcdef")
	key2 := []byte("fedcba9876543210fedcba9876543210")
	tests := []struct {
		name     string
		key      []byte // the joiner's key; the pool uses key1
		wantJoin bool
	}{
		{"same key", key1, true},
		{"different key", key2, false},
		{"no key", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pools := startCluster(t, func(c *lan.Config) { c.EncryptKey = key1 }, "a", "b")
			cfg := fastConfig("joiner")
			cfg.EncryptKey = tc.key
			cfg.Timings.TCPTimeout = 500 * time.Millisecond
			j := startPool(t, cfg)
			n, err := j.Join(t.Context(), []string{pools[0].HostPort})
			if tc.wantJoin {
				if err != nil || n != 1 {
					t.Fatalf("Join(%q) = %d, %v, want 1, nil", pools[0].HostPort, n, err)
				}
				pools[1].WaitStatus(t, "joiner", lan.StatusAlive, 5*time.Second)
				return
			}
			if err == nil || n != 0 {
				t.Fatalf("Join(%q) = %d, %v, want 0 and an error", pools[0].HostPort, n, err)
			}
			if !strings.HasPrefix(err.Error(), "join "+pools[0].HostPort+": ") {
				t.Errorf("Join(%q) error = %q, want it to start with %q", pools[0].HostPort, err, "join "+pools[0].HostPort+": ")
			}
			if _, ok := pools[0].Member("joiner"); ok {
				t.Errorf("a: Members() has joiner after a failed join with key %x", tc.key)
			}
		})
	}
}

func TestEventsInOrder(t *testing.T) {
	t.Parallel()
	cfg := fastConfig("a")
	steady(&cfg)
	a := startPool(t, cfg)
	cfg = fastConfig("b")
	steady(&cfg)
	cfg.TombstoneTimeout = 300 * time.Millisecond
	b := startPool(t, cfg)
	if _, err := b.Join(t.Context(), []string{a.HostPort}); err != nil {
		t.Fatalf("Join(%q) = %v, want nil", a.HostPort, err)
	}
	a.WaitStatus(t, "b", lan.StatusAlive, 5*time.Second)
	if err := b.SetTags(map[string]string{"v": "2"}); err != nil {
		t.Fatalf("SetTags() = %v, want nil", err)
	}
	a.WaitEvent(t, lan.MemberUpdate, "b", 5*time.Second)
	if err := a.UserEvent("deploy", []byte("v2"), false); err != nil {
		t.Fatalf("UserEvent() = %v, want nil", err)
	}
	wait.Eventually(t, 5*time.Second, func() error {
		for _, s := range b.Events.All() {
			if s.Type == lan.User && s.Name == "deploy" && string(s.Payload) == "v2" {
				return nil
			}
		}
		return fmt.Errorf("b: no user event deploy/v2; events %v", b.Events.Summary())
	})
	if err := a.Leave(t.Context()); err != nil {
		t.Fatalf("Leave() = %v, want nil", err)
	}
	b.WaitEvent(t, lan.MemberReap, "a", 5*time.Second)

	// a saw b: join, update. b saw a: join, leave, reap.
	tests := []struct {
		pool *testPool
		node string
		want []lan.EventType
	}{
		{a, "b", []lan.EventType{lan.MemberJoin, lan.MemberUpdate}},
		{b, "a", []lan.EventType{lan.MemberJoin, lan.MemberLeave, lan.MemberReap}},
	}
	for _, tc := range tests {
		var got []lan.EventType
		for _, s := range tc.pool.Events.All() {
			for _, m := range s.Members {
				if m.Name == tc.node {
					got = append(got, s.Type)
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: events for %q = %v, want %v", tc.pool.Name, tc.node, got, tc.want)
		}
	}
}

func TestNameConflict(t *testing.T) {
	t.Parallel()
	pools := startCluster(t, nil, "dup", "b")
	twin := startPool(t, fastConfig("dup"))
	n, err := twin.Join(t.Context(), []string{pools[1].HostPort})
	if !errors.Is(err, lan.ErrNameConflict) {
		t.Fatalf("Join(%q) = %d, %v, want ErrNameConflict", pools[1].HostPort, n, err)
	}
	var c *lan.NameConflictError
	if !errors.As(err, &c) {
		t.Fatalf("Join(%q) error %v is not a *NameConflictError", pools[1].HostPort, err)
	}
	want := lan.NameConflictError{Node: "dup", Addr: twin.HostPort, OtherAddr: pools[0].HostPort, Local: true}
	if *c != want {
		t.Errorf("Join(%q) conflict = %+v, want %+v", pools[1].HostPort, *c, want)
	}
	for _, s := range []string{`"dup"`, twin.HostPort, pools[0].HostPort} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Join(%q) error %q does not name %s", pools[1].HostPort, err, s)
		}
	}
	if err := twin.Leave(t.Context()); !errors.Is(err, lan.ErrNameConflict) {
		t.Errorf("Leave() after a name conflict = %v, want ErrNameConflict", err)
	}
	// b, which knew the first "dup", reports the conflict and keeps it.
	wait.Eventually(t, 5*time.Second, func() error {
		for _, s := range pools[1].Events.All() {
			if s.Type == lan.NameConflict {
				got := *s.Conflict
				want := lan.NameConflictError{Node: "dup", Addr: pools[0].HostPort, OtherAddr: twin.HostPort}
				if got != want {
					return fmt.Errorf("b: NameConflict event = %+v, want %+v", got, want)
				}
				return nil
			}
		}
		return fmt.Errorf("b: no NameConflict event; events %v", pools[1].Events.Summary())
	})
	if err := twin.Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	m, _ := pools[1].Member("dup")
	if addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))); addr != pools[0].HostPort || m.Status != lan.StatusAlive {
		t.Errorf("b: Members()[dup] = %s %s, want %s alive", addr, m.Status, pools[0].HostPort)
	}
}

func TestJoinErrors(t *testing.T) {
	t.Parallel()
	p := startPool(t, fastConfig("a"))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		addrs   []string
		wantErr string // prefix
	}{
		{"nothing listens", t.Context(), []string{"127.0.0.1:1"}, "join 127.0.0.1:1: "},
		{"no addresses", t.Context(), nil, "join: no addresses"},
		{"empty address", t.Context(), []string{""}, "join : empty address"},
		{"canceled", canceled, []string{"127.0.0.1:1"}, "join 127.0.0.1:1: context canceled"},
		{"two fail", t.Context(), []string{"127.0.0.1:1", "127.0.0.1:2"}, "join 127.0.0.1:1: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := p.Join(tc.ctx, tc.addrs)
			if err == nil || n != 0 {
				t.Fatalf("Join(%q) = %d, %v, want 0 and an error", tc.addrs, n, err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Join(%q) = %q, want one line starting %q", tc.addrs, err, tc.wantErr)
			}
			for _, a := range tc.addrs {
				if a != "" && !strings.Contains(err.Error(), a) {
					t.Errorf("Join(%q) = %q, want it to name %s", tc.addrs, err, a)
				}
			}
		})
	}
	// One good address is enough.
	q := startPool(t, fastConfig("b"))
	if n, err := p.Join(t.Context(), []string{"127.0.0.1:1", q.HostPort}); n != 1 || err != nil {
		t.Errorf("Join(bad, good) = %d, %v, want 1, nil", n, err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	busy := startPool(t, fastConfig("busy"))
	_, port := busy.Addr()
	inUse := fastConfig("x")
	inUse.BindPort = port
	badKey := fastConfig("x")
	badKey.EncryptKey = []byte("short")
	tests := []struct {
		name    string
		cfg     lan.Config
		wantErr string
		wantIs  error
	}{
		{"address in use", inUse, "bind gossip " + busy.HostPort + ": ", syscall.EADDRINUSE},
		{"key length", badKey, "lan config: encrypt key is 5 bytes, want 16, 24 or 32", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := lan.New(tc.cfg)
			gossiptest.CheckNewError(t, p, err, tc.wantErr, tc.wantIs)
		})
	}
}

// snapshotHas reports whether serf's snapshot at path lists every address.
func snapshotHas(path string, addrs ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !strings.Contains(string(b), " "+a+"\n") {
			return fmt.Errorf("snapshot %s does not list %s:\n%s", path, a, b)
		}
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for the pool's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLoggerBridge(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	cfg := fastConfig("logged")
	cfg.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := lan.New(cfg)
	if err != nil {
		t.Fatalf("New() = %v, want nil", err)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatalf("Shutdown() = %v, want nil", err)
	}
	for _, want := range []string{
		`level=DEBUG msg=gossip source=serf text="EventMemberJoin: logged 127.0.0.1"`,
		`level=WARN msg=gossip source=serf text="Shutdown without a Leave"`,
		`level=INFO msg="lan pool started" node=logged`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log output lacks %q; got:\n%s", want, out.String())
		}
	}
}

// TestPing: a ping to a pool that is not a member answers with a round
// trip; a ping naming another member, or to a pool shut down, fails within
// the probe timeout.
func TestPing(t *testing.T) {
	t.Parallel()
	a, b := startPool(t, fastConfig("ping-a")), startPool(t, fastConfig("ping-b"))
	rtt, err := a.Ping("ping-b", b.HostPort)
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping(ping-b, %s) = %v, %v, want a round trip", b.HostPort, rtt, err)
	}
	t.Logf("Ping on loopback = %v", rtt)
	if _, err := a.Ping("ping-c", b.HostPort); err == nil {
		t.Errorf("Ping(ping-c, %s) (ping-b's address) = nil error, want no answer", b.HostPort)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ping("ping-b", b.HostPort); err == nil {
		t.Errorf("Ping(ping-b) after its Shutdown = nil error, want no answer")
	}
}

// TestExchange: an exchange of member lists merges two pools as a Join
// does, and one with a port where no pool listens fails naming it.
func TestExchange(t *testing.T) {
	t.Parallel()
	a, b := startPool(t, fastConfig("exchange-a")), startPool(t, fastConfig("exchange-b"))
	if err := a.Exchange(b.HostPort); err != nil {
		t.Fatalf("Exchange(%s) = %v, want nil", b.HostPort, err)
	}
	a.WaitStatus(t, "exchange-b", lan.StatusAlive, 5*time.Second)
	b.WaitStatus(t, "exchange-a", lan.StatusAlive, 5*time.Second)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	err := a.Exchange(b.HostPort)
	if err == nil || !strings.HasPrefix(err.Error(), "exchange with "+b.HostPort+": ") {
		t.Errorf("Exchange with a stopped pool = %v, want an error naming %s", err, b.HostPort)
	}
}
