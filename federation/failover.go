package federation

import "slices"

// Failover is where to look, in order, when the local datacenter has no
// healthy instance: the NearestN other datacenters by round-trip time, then
// the Datacenters listed, each datacenter at most once (Consul's prepared
// query Failover semantics, shared by the per-service failover policy).
type Failover struct {
	// NearestN is how many of the nearest other datacenters to try first.
	NearestN int
	// Datacenters are tried next, in this order, skipping any already
	// tried and the local one.
	Datacenters []string
}

// Order returns the datacenters to try after the local one, given every
// known datacenter sorted by distance (Router.Datacenters: local first).
// A listed datacenter that is not known is kept: asking it answers
// rpc.ErrNoPathToDC, which the caller counts as a failed attempt.
func (f Failover) Order(sorted []string, local string) []string {
	var out []string
	add := func(dc string) {
		if dc != local && !slices.Contains(out, dc) {
			out = append(out, dc)
		}
	}
	n := 0
	for _, dc := range sorted {
		if n >= f.NearestN {
			break
		}
		if dc != local {
			add(dc)
			n++
		}
	}
	for _, dc := range f.Datacenters {
		add(dc)
	}
	return out
}
