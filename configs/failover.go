package configs

import "strings"

// FailoverPolicy says where a service's lookups go when the local
// datacenter has no healthy instance: the Nearest other datacenters by
// round-trip time, then Datacenters in order, each at most once (the
// semantics of a prepared query's Failover, without a query to create).
type FailoverPolicy struct {
	// Nearest is how many of the nearest other datacenters to try first.
	Nearest int `config:"nearest"`
	// Datacenters are tried next, in order. The agent's own datacenter may
	// be listed (one file can serve every datacenter): it is skipped.
	Datacenters []string `config:"datacenters"`
}

// FailoverFor returns the policy of service: its own entry, else the "*"
// entry; ok is false when neither exists. Names match case-insensitively.
func (c *Config) FailoverFor(service string) (p FailoverPolicy, ok bool) {
	for name, pol := range c.Failover {
		if strings.EqualFold(name, service) {
			return pol, true
		}
	}
	p, ok = c.Failover["*"]
	return p, ok
}

func (v *validation) failover() {
	for name, p := range v.c.Failover {
		key := "failover." + name
		if name == "" {
			v.failf("failover", "a service name must not be empty")
		}
		if p.Nearest < 0 {
			v.failf(key+".nearest", "must not be negative, got %d", p.Nearest)
		}
		if p.Nearest == 0 && len(p.Datacenters) == 0 {
			v.failf(key, "names no datacenter: set nearest or datacenters")
		}
		for _, dc := range p.Datacenters {
			if dc == "" || !isDatacenterName(dc) {
				v.failf(key+".datacenters", "%q is not a datacenter name (lowercase letters, digits, '-' and '_')", dc)
			}
		}
	}
}
