// Package testcluster starts real Meridian agents in one test process: N
// servers and M clients of a datacenter on 127.0.0.1 with ports from :0, real
// Raft and real gossip at fast timings. Every package's cluster tests use it.
//
// A Bridge (Options.Bridge) partitions agents without killing anything: it
// carries every connection and datagram between them (Raft, RPC, gossip,
// WAN links) through the test seams of their configurations and
// blackholes, delays or drops it per ordered pair:
//
//	b := testcluster.NewBridge()
//	c := testcluster.New(t, testcluster.Options{Servers: 3, Bridge: b})
//	leader := c.WaitLeader(10 * time.Second)
//	b.Partition(testcluster.IDs(leader), testcluster.IDs(c.Followers(leader)...))
//	...
//	b.Heal()
//
// Everything a cluster starts is stopped through t.Cleanup. Waits are
// deadline-bounded retries (Eventually) that report the last error, never
// bare sleeps.
package testcluster
