package lan_test

import (
	"testing"
	"time"

	"github.com/meridian/meridian/internal/gossiptest"
	"github.com/meridian/meridian/lan"
)

// TestMain fails the run if goroutines outlive the tests, looking for them
// for up to 10s (see gossiptest.Main).
func TestMain(m *testing.M) {
	gossiptest.Main(m, 10*time.Second)
}

// testPool is a started Pool with a recorder draining its events.
type testPool struct {
	*lan.Pool
	*gossiptest.Node
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

// steady slows a test pool's failure detector down (a member must miss
// about five seconds of probes to be declared failed) for the tests that
// are about something else and require that no member fail: under the race
// detector on a loaded machine, FastTimings' 100ms probe timeout fires.
func steady(c *lan.Config) {
	c.Timings.ProbeInterval = time.Second
	c.Timings.ProbeTimeout = 800 * time.Millisecond
	c.Timings.SuspicionMult = 4
}

// startPool starts a pool from cfg (adding an EventCh and a recorder) and
// shuts it down at the end of the test.
func startPool(t *testing.T, cfg lan.Config) *testPool {
	t.Helper()
	p, n := gossiptest.Start(t, cfg.NodeName, func(events chan<- lan.Event) (*lan.Pool, error) {
		cfg.EventCh = events
		return lan.New(cfg)
	})
	return &testPool{Pool: p, Node: n}
}

// startCluster starts pools with the given names (fast timings, changed by
// mod if not nil), joins them all to the first and waits until every pool
// sees every other alive.
func startCluster(t *testing.T, mod func(*lan.Config), names ...string) []*testPool {
	t.Helper()
	return gossiptest.Cluster(t, names, func(name string) *testPool {
		cfg := fastConfig(name)
		if mod != nil {
			mod(&cfg)
		}
		return startPool(t, cfg)
	})
}
