// Package testcluster starts real Meridian agents in one test process: N
// servers and M clients of a datacenter on 127.0.0.1 with ports from :0, real
// Raft and real gossip at fast timings. Every package's cluster tests use it.
//
// Everything a cluster starts is stopped through t.Cleanup. Waits are
// deadline-bounded retries (Eventually) that report the last error, never
// bare sleeps.
package testcluster
