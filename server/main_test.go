package server_test

import (
	"testing"

	"github.com/meridian/meridian/internal/leaktest"
	"github.com/meridian/meridian/server"
)

// TestMain fails the run if a goroutine the tests started outlives them.
func TestMain(m *testing.M) { leaktest.Main(m) }

// defaultRaftTimings gives a testcluster the production Raft timings
// instead of its fast ones, for the tests of several servers whose point is
// not election speed: with testcluster's 100ms lease their servers lost and
// won leadership again every second or so on a loaded machine (load average
// 20 on 2 CPUs), and their writes failed with "leadership lost".
func defaultRaftTimings(c *server.Config) {
	d := server.DefaultConfig()
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
}
