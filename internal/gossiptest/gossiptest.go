package gossiptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian/meridian/internal/wait"
	"github.com/meridian/meridian/lan"
)

// Main runs the package's tests and exits, failing the run if goroutines
// outlive them. memberlist's Shutdown does not wait for a probe in flight,
// which ends within ProbeInterval times its awareness multiplier (at most
// 8), so leaks are looked for until leakWait has passed rather than once.
func Main(m *testing.M, leakWait time.Duration) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(leakWait)
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

// Pool is what the helpers use of a started pool: *lan.Pool and *wan.Pool
// have it.
type Pool interface {
	Join(ctx context.Context, addrs []string) (int, error)
	Members() []lan.Member
	Addr() (net.IP, int)
	Shutdown() error
}

// Node is a started pool as a test sees it: its name, its address and the
// events it delivered. A test package embeds it, next to the pool, in a type
// of its own (see the package doc), which then satisfies Started.
type Node struct {
	// Name is the pool's member name ("node.dc" in the WAN pool), used in
	// failure messages.
	Name string
	// HostPort is the address the pool gossips on, host:port.
	HostPort string
	// Events holds what the pool sent on its event channel.
	Events *Recorder

	pool Pool
}

// Started is a test package's own type of started pool: one that embeds
// *Node.
type Started interface {
	node() *Node
}

func (n *Node) node() *Node { return n }

// Start starts a pool with newPool, handing it the channel its events are to
// be sent on, records those events in the Node, and shuts the pool down at
// the end of the test. name is the pool's member name. It fails the test if
// newPool fails.
func Start[P Pool](t testing.TB, name string, newPool func(events chan<- lan.Event) (P, error)) (P, *Node) {
	t.Helper()
	ch := make(chan lan.Event)
	p, err := newPool(ch)
	if err != nil {
		t.Fatalf("New(%q) = %v, want nil error", name, err)
	}
	ip, port := p.Addr()
	n := &Node{Name: name, HostPort: net.JoinHostPort(ip.String(), strconv.Itoa(port)), Events: &Recorder{}, pool: p}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { n.Events.run(ch, done) })
	t.Cleanup(func() {
		// The recorder drains the channel until the pool is shut down, so
		// that Shutdown never waits on an event nobody reads.
		if err := p.Shutdown(); err != nil {
			t.Errorf("Shutdown(%q) = %v, want nil", name, err)
		}
		close(done)
		wg.Wait()
	})
	return p, n
}

// Cluster starts one pool per name with start, joins every other pool to the
// first and waits until every pool sees every other alive.
func Cluster[S Started](t testing.TB, names []string, start func(name string) S) []S {
	t.Helper()
	pools := make([]S, len(names))
	for i, name := range names {
		pools[i] = start(name)
	}
	seed := pools[0].node().HostPort
	for _, p := range pools[1:] {
		n := p.node()
		if got, err := n.pool.Join(t.Context(), []string{seed}); err != nil || got != 1 {
			t.Fatalf("%s: Join(%q) = %d, %v, want 1, nil", n.Name, seed, got, err)
		}
	}
	for _, p := range pools {
		for _, q := range pools {
			p.node().WaitStatus(t, q.node().Name, lan.StatusAlive, 10*time.Second)
		}
	}
	return pools
}

// Member returns what the pool knows of member name.
func (n *Node) Member(name string) (lan.Member, bool) {
	for _, m := range n.pool.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return lan.Member{}, false
}

// WaitStatus waits until the pool sees member name with status want.
func (n *Node) WaitStatus(t testing.TB, name string, want lan.Status, timeout time.Duration) {
	t.Helper()
	wait.Eventually(t, timeout, func() error {
		m, ok := n.Member(name)
		if !ok {
			return fmt.Errorf("%s: Members() has no %q, want status %q", n.Name, name, want)
		}
		if m.Status != want {
			return fmt.Errorf("%s: Members()[%q].Status = %q, want %q", n.Name, name, m.Status, want)
		}
		return nil
	})
}

// WaitGone waits until the pool no longer lists member name.
func (n *Node) WaitGone(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	wait.Eventually(t, timeout, func() error {
		if m, ok := n.Member(name); ok {
			return fmt.Errorf("%s: Members() still has %q (status %q), want it gone", n.Name, name, m.Status)
		}
		return nil
	})
}

// WaitEvent waits until the pool delivered an event of type typ concerning
// member name, and returns the first such event.
func (n *Node) WaitEvent(t testing.TB, typ lan.EventType, name string, timeout time.Duration) Stamped {
	t.Helper()
	var got Stamped
	wait.Eventually(t, timeout, func() error {
		s, ok := n.Events.First(typ, name)
		if !ok {
			return fmt.Errorf("%s: no %v event for %q; events: %v", n.Name, typ, name, n.Events.Summary())
		}
		got = s
		return nil
	})
	return got
}

// Stamped is an event and when the test received it.
type Stamped struct {
	lan.Event
	At time.Time
}

// Recorder keeps the events a pool delivered. It is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []Stamped
}

// run keeps what arrives on ch until done is closed.
func (r *Recorder) run(ch <-chan lan.Event, done <-chan struct{}) {
	for {
		select {
		case ev := <-ch:
			r.mu.Lock()
			r.events = append(r.events, Stamped{Event: ev, At: time.Now()})
			r.mu.Unlock()
		case <-done:
			return
		}
	}
}

// All returns the events recorded so far, oldest first.
func (r *Recorder) All() []Stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stamped(nil), r.events...)
}

// First returns the first event of type typ concerning member name.
func (r *Recorder) First(typ lan.EventType, name string) (Stamped, bool) {
	for _, s := range r.All() {
		if s.Type != typ {
			continue
		}
		for _, m := range s.Members {
			if m.Name == name {
				return s, true
			}
		}
	}
	return Stamped{}, false
}

// Summary lists the events recorded so far as "type(member,...)", for
// failure messages.
func (r *Recorder) Summary() []string {
	events := r.All()
	out := make([]string, 0, len(events))
	for _, s := range events {
		names := make([]string, len(s.Members))
		for i, m := range s.Members {
			names[i] = m.Name
		}
		out = append(out, s.Type.String()+"("+strings.Join(names, ",")+")")
	}
	return out
}

// CheckOneLine fails the test unless err, returned by call, is a one-line
// error naming addr.
func CheckOneLine(t testing.TB, call string, err error, addr string) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s = %q, want one line", call, err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("%s = %q, want it to name %s", call, err, addr)
	}
}

// CheckValidate fails the test unless err, returned by a Config's Validate,
// is nil when wantErr is "", or else an error containing wantErr.
func CheckValidate(t testing.TB, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("Validate() = %v, want nil", err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("Validate() = %v, want error containing %q", err, wantErr)
	}
}

// CheckNewError fails the test unless New, which returned p and err, failed
// with an error starting with wantPrefix and, when wantIs is not nil,
// matching it. A pool New started anyway is shut down.
func CheckNewError[P Pool](t testing.TB, p P, err error, wantPrefix string, wantIs error) {
	t.Helper()
	if err == nil {
		p.Shutdown()
		t.Fatalf("New() = nil error, want %q", wantPrefix)
	}
	if !strings.HasPrefix(err.Error(), wantPrefix) {
		t.Errorf("New() = %q, want prefix %q", err, wantPrefix)
	}
	if wantIs != nil && !errors.Is(err, wantIs) {
		t.Errorf("New() = %v, want errors.Is %v", err, wantIs)
	}
}
