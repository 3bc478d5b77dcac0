package wan

// Stats reports the pool's gossip statistics, Consul's serf_wan section of
// /v1/agent/self (see lan.Pool.Stats).
func (p *Pool) Stats() map[string]string { return p.lan.Stats() }
