package configs

import "time"

// Limits caps what clients of the agent may hold (the limits block, as
// Consul's).
type Limits struct {
	// HTTPMaxConnsPerClient is how many HTTP connections one client IP may
	// hold open at once; a connection past it is answered 429 and closed.
	// Loopback clients count too (a local tool that leaks connections is
	// stopped like any other). 0 means no cap. Default 200, as Consul.
	HTTPMaxConnsPerClient int `config:"http_max_conns_per_client"`
}

func defaultLimits() Limits {
	return Limits{HTTPMaxConnsPerClient: 200}
}

// Blocking-query waits, as Consul's.
const (
	// DefaultMaxQueryTime caps the ?wait= of a blocking query.
	DefaultMaxQueryTime = 600 * time.Second
	// DefaultDefaultQueryTime is a blocking query's wait when the client
	// gives none.
	DefaultDefaultQueryTime = 300 * time.Second
)

func (v *validation) limits() {
	c := v.c
	if c.Limits.HTTPMaxConnsPerClient < 0 {
		v.failf("limits.http_max_conns_per_client", "must not be negative (0 means no cap), got %d", c.Limits.HTTPMaxConnsPerClient)
	}
	v.positive("max_query_time", c.MaxQueryTime)
	v.positive("default_query_time", c.DefaultQueryTime)
	if c.DefaultQueryTime > 0 && c.MaxQueryTime > 0 && c.DefaultQueryTime > c.MaxQueryTime {
		v.failf("default_query_time", "must not be longer than max_query_time (%s), got %s", c.MaxQueryTime, c.DefaultQueryTime)
	}
}
