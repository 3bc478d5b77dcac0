package wan

import "maps"

// Stats reports the pool's gossip statistics, Consul's serf_wan section of
// /v1/agent/self (see lan.Pool.Stats), and this server's links (see
// linkStats): links, links_missing, links_unreached and links_source.
func (p *Pool) Stats() map[string]string {
	s := p.lan.Stats()
	maps.Copy(s, p.linkStats())
	return s
}
