package lan

// Stats reports the pool's gossip statistics as Consul's serf_lan section
// of /v1/agent/self does: members, failed, left, health_score,
// event_queue, encrypted and the Lamport times, as strings.
func (p *Pool) Stats() map[string]string { return p.serf.Stats() }
