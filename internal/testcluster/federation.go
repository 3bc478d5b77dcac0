package testcluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Federate joins the servers of every cluster to one WAN gossip pool,
// through the first server of the first cluster, and waits until every
// server sees every other alive and routes to every datacenter.
func Federate(t testing.TB, clusters ...*Cluster) {
	t.Helper()
	if len(clusters) < 2 || len(clusters[0].Servers) == 0 {
		t.Fatalf("testcluster: Federate takes two or more clusters with servers")
	}
	seed := clusters[0].Servers[0].WANAddr()
	total := 0
	for _, c := range clusters {
		total += len(c.Servers)
		for _, n := range c.Servers {
			if n == clusters[0].Servers[0] {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := n.Agent().Join(ctx, seed, true)
			cancel()
			if err != nil {
				t.Fatalf("wan join %s to %s: %v", n.Name, seed, err)
			}
		}
	}
	// A server of another datacenter is admitted once it has answered a
	// probe of its own (learned links), and a datacenter whose probe went
	// unanswered is probed again after 1s, then 2s, 4s...: under the race
	// detector on CI's loaded cores one server of four was still out
	// after 10s.
	WaitWAN(t, total, 30*time.Second, clusters...)
}

// WaitWAN waits until every running server of clusters sees want alive
// WAN members and can route to every datacenter of clusters.
func WaitWAN(t testing.TB, want int, timeout time.Duration, clusters ...*Cluster) {
	t.Helper()
	Eventually(t, timeout, func() error {
		for _, c := range clusters {
			for _, n := range c.Servers {
				if !n.Running() {
					continue
				}
				alive, err := n.alive(true)
				if err != nil {
					return err
				}
				if alive != want {
					return fmt.Errorf("%s of %s sees %d alive WAN members, want %d", n.Name, c.opts.Datacenter, alive, want)
				}
				for _, other := range clusters {
					if known, ok := n.Agent().Server().DatacenterStatus(other.opts.Datacenter); !known || !ok {
						return fmt.Errorf("%s of %s cannot route to %s yet", n.Name, c.opts.Datacenter, other.opts.Datacenter)
					}
				}
			}
		}
		return nil
	})
}
