// Package gossiptest holds what the tests of the two gossip pools, lan and
// wan, share: a started pool with a recorder of its events (Start), pools
// joined into one cluster (Cluster), deadline-bounded waits on what a pool
// sees (Node.WaitStatus, Node.WaitGone, Node.WaitEvent, Eventually), and a
// TestMain that looks for leaked goroutines (Main).
//
// Only the external test packages lan_test and wan_test import it. It
// imports lan alone: wan's Member, Event and Status are aliases of lan's, so
// one set of helpers reads both pools. A test package embeds *Node next to
// its own pool type:
//
//	type testPool struct {
//		*lan.Pool
//		*gossiptest.Node
//	}
//
//	func startPool(t *testing.T, cfg lan.Config) *testPool {
//		p, n := gossiptest.Start(t, cfg.NodeName, func(events chan<- lan.Event) (*lan.Pool, error) {
//			cfg.EventCh = events
//			return lan.New(cfg)
//		})
//		return &testPool{Pool: p, Node: n}
//	}
//
// Everything Start starts is shut down through t.Cleanup, and no helper
// keeps package state, so tests using it may run in parallel.
package gossiptest
