package wan_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/wan"
	"go.uber.org/goleak"
)

// TestMain fails the run if goroutines outlive the tests. memberlist's
// Shutdown does not wait for a probe in flight, so leaks are looked for
// until a deadline rather than once (as in lan's tests).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(20 * time.Second)
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
	*wan.Pool
	name string // node.dc
	addr string // host:port
	rec  *recorder
	logs *logRecorder
}

// stamped is an event and when the test received it.
type stamped struct {
	at time.Time
	ev wan.Event
}

// recorder drains an EventCh and keeps what arrived.
type recorder struct {
	mu     sync.Mutex
	events []stamped
}

func (r *recorder) run(ch <-chan wan.Event, done <-chan struct{}, wg *sync.WaitGroup) {
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

// first returns the first event of type typ concerning member name.
func (r *recorder) first(typ wan.EventType, name string) (stamped, bool) {
	for _, s := range r.all() {
		if s.ev.Type != typ {
			continue
		}
		for _, m := range s.ev.Members {
			if m.Name == name {
				return s, true
			}
		}
	}
	return stamped{}, false
}

// logRecorder is a slog.Handler keeping the "text" of gossip log lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// count returns how many lines contain s.
func (l *logRecorder) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// fastConfig is a config for server node of datacenter dc on 127.0.0.1:0
// with FastTimings.
func fastConfig(node, dc string) wan.Config {
	cfg := wan.DefaultConfig()
	cfg.Node = node
	cfg.Datacenter = dc
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	cfg.Timings = wan.FastTimings()
	return cfg
}

// startPool starts a pool from cfg (adding an EventCh, a recorder and a log
// recorder) and shuts it down at the end of the test.
func startPool(t *testing.T, cfg wan.Config) *testPool {
	t.Helper()
	ch := make(chan wan.Event)
	cfg.EventCh = ch
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	p, err := wan.New(cfg)
	if err != nil {
		t.Fatalf("New(%q) = %v, want nil error", cfg.Name(), err)
	}
	tp := &testPool{Pool: p, name: cfg.Name(), rec: &recorder{}, logs: logs}
	ip, port := p.Addr()
	tp.addr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go tp.rec.run(ch, done, &wg)
	t.Cleanup(func() {
		if err := p.Shutdown(); err != nil {
			t.Errorf("Shutdown(%q) = %v, want nil", tp.name, err)
		}
		close(done)
		wg.Wait()
	})
	return tp
}

// startCluster starts one server per "node.dc" name (fast timings, changed
// by mod if not nil), joins them all to the first and waits until every
// pool sees every other alive.
func startCluster(t *testing.T, mod func(*wan.Config), names ...string) []*testPool {
	t.Helper()
	pools := make([]*testPool, len(names))
	for i, name := range names {
		node, dc, ok := wan.SplitName(name)
		if !ok {
			t.Fatalf("bad WAN name %q", name)
		}
		cfg := fastConfig(node, dc)
		if mod != nil {
			mod(&cfg)
		}
		pools[i] = startPool(t, cfg)
	}
	for _, p := range pools[1:] {
		if n, err := p.Join(t.Context(), []string{pools[0].addr}); err != nil || n != 1 {
			t.Fatalf("%s: Join(%q) = %d, %v, want 1, nil", p.name, pools[0].addr, n, err)
		}
	}
	for _, p := range pools {
		for _, q := range pools {
			waitStatus(t, p, q.name, wan.StatusAlive, 10*time.Second)
		}
	}
	return pools
}

// member returns what p knows of name.
func member(p interface{ Members() []wan.Member }, name string) (wan.Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return wan.Member{}, false
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

// waitStatus waits until p sees name with status want.
func waitStatus(t *testing.T, p *testPool, name string, want wan.Status, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		m, ok := member(p, name)
		if !ok {
			return fmt.Errorf("%s: Members() has no %q, want status %q", p.name, name, want)
		}
		if m.Status != want {
			return fmt.Errorf("%s: Members()[%q].Status = %q, want %q", p.name, name, m.Status, want)
		}
		return nil
	})
}

// waitGone waits until p no longer lists name.
func waitGone(t *testing.T, p *testPool, name string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		if m, ok := member(p, name); ok {
			return fmt.Errorf("%s: Members() still has %q (status %q), want it gone", p.name, name, m.Status)
		}
		return nil
	})
}

// waitEvent waits until p recorded an event of type typ for name.
func waitEvent(t *testing.T, p *testPool, typ wan.EventType, name string, timeout time.Duration) stamped {
	t.Helper()
	var got stamped
	eventually(t, timeout, func() error {
		s, ok := p.rec.first(typ, name)
		if !ok {
			return fmt.Errorf("%s: no %v event for %q; events: %v", p.name, typ, name, summary(p.rec.all()))
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
		names := make([]string, len(s.ev.Members))
		for i, m := range s.ev.Members {
			names[i] = m.Name
		}
		out = append(out, s.ev.Type.String()+"("+strings.Join(names, ",")+")")
	}
	return out
}

// checkOneLine fails unless err is a one-line error naming addr.
func checkOneLine(t *testing.T, call string, err error, addr string) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s = %q, want one line", call, err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("%s = %q, want it to name %s", call, err, addr)
	}
}
