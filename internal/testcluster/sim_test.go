package testcluster_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/meridian/meridian/internal/testcluster"
	"github.com/meridian/meridian/internal/wait"
)

// TestAgentRing federates datacenters of one real agent each (Raft in
// memory, gossip, QUIC links) as a ring, with every pair that is not
// adjacent cut on the network (gossip and links): every datacenter reaches
// every other through the ring, and when one dies the others route the
// other way around. Six by default; MERIDIAN_AGENT_RING=N for another
// size (the 50-DC figures come from package federation's simulation,
// which runs the same exchange without a whole agent per datacenter).
// Ten pass; at twenty, one WAN gossip pool over so partial a network
// keeps declaring servers failed from probes across cut paths, each such
// verdict closes that link and withdraws its routes for a retry, and a
// read now and then finds no route: that is what WAN pools per link
// (federation.links) take away.
func TestAgentRing(t *testing.T) {
	n := 6
	if v := os.Getenv("MERIDIAN_AGENT_RING"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 4 {
			t.Fatalf("MERIDIAN_AGENT_RING=%q: want a size of 4 or more", v)
		}
	}
	b := testcluster.NewBridge()
	cs := make([]*testcluster.Cluster, n)
	for i := range n {
		cs[i] = testcluster.New(t, testcluster.Options{Servers: 1, InMemory: true, Datacenter: fmt.Sprintf("dc%02d", i+1), Bridge: b})
	}
	dc := func(i int) string { return fmt.Sprintf("dc%02d", i+1) }
	for i := range n {
		for j := i + 2; j < n; j++ {
			if i == 0 && j == n-1 {
				continue // the ring closes
			}
			b.Cut(cs[i].Servers[0].ID(), cs[j].Servers[0].ID())
		}
	}
	for i := range n {
		next := cs[(i+1)%n].Servers[0].WANAddr()
		if err := cs[i].Servers[0].Agent().Join(context.Background(), next, true); err != nil {
			t.Fatalf("%s joins %s: %v", dc(i), dc((i+1)%n), err)
		}
	}
	joined := time.Now()
	routed := func(alive func(int) bool) error {
		for i := range n {
			if !alive(i) {
				continue
			}
			v, err := routesOf(cs[i].Servers[0])
			if err != nil {
				return err
			}
			for j := range n {
				if j == i || !alive(j) {
					continue
				}
				k := slices.IndexFunc(v.Routes, func(r routeView) bool { return r.Datacenter == dc(j) })
				if k < 0 {
					return fmt.Errorf("%s has no route to %s", dc(i), dc(j))
				}
				for d := range n {
					if !alive(d) && slices.Contains(v.Routes[k].Path, dc(d)) {
						return fmt.Errorf("%s routes to %s through dead %s", dc(i), dc(j), dc(d))
					}
				}
			}
		}
		return nil
	}
	reach := func(alive func(int) bool) error {
		for i := range n {
			for j := range n {
				if i == j || !alive(i) || !alive(j) {
					continue
				}
				nodes, _, err := cs[i].Servers[0].API().Catalog().Nodes(&api.QueryOptions{Datacenter: dc(j)})
				if err == nil && (len(nodes) != 1 || nodes[0].Datacenter != dc(j)) {
					err = fmt.Errorf("answered %+v", nodes)
				}
				if err != nil {
					return fmt.Errorf("%s reads %s's catalog: %w", dc(i), dc(j), err)
				}
			}
		}
		return nil
	}
	all := func(int) bool { return true }
	testcluster.Eventually(t, 30*time.Second, func() error { return routed(all) })
	t.Logf("%d DCs on a ring: every one routes to every other %v after the last WAN join", n, time.Since(joined).Round(time.Millisecond))
	testcluster.Eventually(t, 20*time.Second, func() error { return reach(all) })

	cs[0].Servers[0].Kill()
	killed := time.Now()
	up := func(i int) bool { return i != 0 }
	testcluster.Eventually(t, 20*time.Second, func() error { return routed(up) })
	took := time.Since(killed)
	t.Logf("rerouted around dead %s in %v", dc(0), took.Round(time.Millisecond))
	wait.Figure(t, took <= 5*time.Second, "rerouted around dead %s after %v, want within 5s", dc(0), took)
	testcluster.Eventually(t, 20*time.Second, func() error { return reach(up) })
}
