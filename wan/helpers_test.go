package wan_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/wan"
)

// TestMain fails the run if goroutines outlive the tests, looking for them
// for up to 20s (see gossiptest.Main): the WAN's DefaultTimings probe
// half as often as the LAN's, so a probe in flight may end later.
func TestMain(m *testing.M) {
	gossiptest.Main(m, 20*time.Second)
}

// testPool is a started Pool with a recorder draining its events and one
// keeping its log lines.
type testPool struct {
	*wan.Pool
	*gossiptest.Node // Name is "node.dc"
	logs             *logRecorder
}

// logRecorder is a slog.Handler keeping log lines as "LEVEL message
// key=value...".
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
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
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	p, n := gossiptest.Start(t, cfg.Name(), func(events chan<- wan.Event) (*wan.Pool, error) {
		cfg.EventCh = events
		return wan.New(cfg)
	})
	return &testPool{Pool: p, Node: n, logs: logs}
}

// startCluster starts one server per "node.dc" name (fast timings, changed
// by mod if not nil), joins them all to the first and waits until every
// pool sees every other alive.
func startCluster(t *testing.T, mod func(*wan.Config), names ...string) []*testPool {
	t.Helper()
	return gossiptest.Cluster(t, names, func(name string) *testPool {
		node, dc, ok := wan.SplitName(name)
		if !ok {
			t.Fatalf("bad WAN name %q", name)
		}
		cfg := fastConfig(node, dc)
		if mod != nil {
			mod(&cfg)
		}
		return startPool(t, cfg)
	})
}
