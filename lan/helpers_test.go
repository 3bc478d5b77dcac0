package lan_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/lan"
	"go.uber.org/goleak"
)

// TestMain fails the run if goroutines outlive the tests. memberlist's
// Shutdown does not wait for a probe in flight, which ends within
// ProbeInterval times its awareness multiplier (at most 8), so leaks are
// looked for until a deadline rather than once.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
		}
	}
	os.Exit(code)
}

// testPool is a started Pool with a recorder draining its events.
type testPool struct {
	*lan.Pool
	name string
	addr string // host:port
	rec  *recorder
}

// stamped is an event and when the test received it.
type stamped struct {
	at time.Time
	ev lan.Event
}

// recorder drains an EventCh and keeps what arrived.
type recorder struct {
	mu     sync.Mutex
	events []stamped
}

func (r *recorder) run(ch <-chan lan.Event, done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case ev := <-ch:
			r.mu.Lock()
			r.events = append(r.events, stamped{time.Now(), ev})
			r.mu.Unlock()
		case <-done:
			return
		}
	}
}

func (r *recorder) all() []stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stamped(nil), r.events...)
}

// first returns the first event of type typ concerning member node.
func (r *recorder) first(typ lan.EventType, node string) (stamped, bool) {
	for _, s := range r.all() {
		if s.ev.Type != typ {
			continue
		}
		for _, m := range s.ev.Members {
			if m.Name == node {
				return s, true
			}
		}
	}
	return stamped{}, false
}

// fastConfig is a config for pool name on 127.0.0.1:0 with FastTimings.
func fastConfig(name string) lan.Config {
	cfg := lan.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Timings = lan.FastTimings()
	return cfg
}

// startPool starts a pool from cfg (adding an EventCh and a recorder) and
// shuts it down at the end of the test.
func startPool(t *testing.T, cfg lan.Config) *testPool {
	t.Helper()
	ch := make(chan lan.Event)
	cfg.EventCh = ch
	p, err := lan.New(cfg)
	if err != nil {
		t.Fatalf("New(%q) = %v, want nil error", cfg.NodeName, err)
	}
	tp := &testPool{Pool: p, name: cfg.NodeName, rec: &recorder{}}
	ip, port := p.Addr()
	tp.addr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go tp.rec.run(ch, done, &wg)
	t.Cleanup(func() {
		if err := p.Shutdown(); err != nil {
			t.Errorf("Shutdown(%q) = %v, want nil", cfg.NodeName, err)
		}
		close(done)
		wg.Wait()
	})
	return tp
}

// startCluster starts pools with the given names (fast timings, changed by
// mod if not nil) and joins them all to the first.
func startCluster(t *testing.T, mod func(*lan.Config), names ...string) []*testPool {
	t.Helper()
	pools := make([]*testPool, len(names))
	for i, name := range names {
		cfg := fastConfig(name)
		if mod != nil {
			mod(&cfg)
		}
		pools[i] = startPool(t, cfg)
	}
	for _, p := range pools[1:] {
		if n, err := p.Join(t.Context(), []string{pools[0].addr}); err != nil || n != 1 {
			t.Fatalf("Join(%q) = %d, %v, want 1, nil", pools[0].addr, n, err)
		}
	}
	for _, p := range pools {
		for _, q := range pools {
			waitStatus(t, p, q.name, lan.StatusAlive, 10*time.Second)
		}
	}
	return pools
}

// member returns what p knows of node.
func member(p *testPool, node string) (lan.Member, bool) {
	for _, m := range p.Members() {
		if m.Name == node {
			return m, true
		}
	}
	return lan.Member{}, false
}

// eventually retries f until it returns nil or timeout passes, then fails
// the test with f's last error.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended waiting: %v", err)
		}
	}
}

// waitStatus waits until p sees node with status want.
func waitStatus(t *testing.T, p *testPool, node string, want lan.Status, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		m, ok := member(p, node)
		if !ok {
			return fmt.Errorf("%s: Members() has no %q, want status %q", p.name, node, want)
		}
		if m.Status != want {
			return fmt.Errorf("%s: Members()[%q].Status = %q, want %q", p.name, node, m.Status, want)
		}
		return nil
	})
}

// waitGone waits until p no longer lists node.
func waitGone(t *testing.T, p *testPool, node string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		if m, ok := member(p, node); ok {
			return fmt.Errorf("%s: Members() still has %q (status %q), want it reaped", p.name, node, m.Status)
		}
		return nil
	})
}

// waitEvent waits until p recorded an event of type typ for node.
func waitEvent(t *testing.T, p *testPool, typ lan.EventType, node string, timeout time.Duration) stamped {
	t.Helper()
	var got stamped
	eventually(t, timeout, func() error {
		s, ok := p.rec.first(typ, node)
		if !ok {
			return fmt.Errorf("%s: no %v event for %q; events: %v", p.name, typ, node, summary(p.rec.all()))
		}
		got = s
		return nil
	})
	return got
}

// summary lists events as "type(member,...)" for failure messages.
func summary(events []stamped) []string {
	out := make([]string, 0, len(events))
	for _, s := range events {
		str := s.ev.Type.String() + "("
		for i, m := range s.ev.Members {
			if i > 0 {
				str += ","
			}
			str += m.Name
		}
		out = append(out, str+")")
	}
	return out
}
