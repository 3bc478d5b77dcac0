package configs

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// The values of Config.WANTransport.
const (
	// WANTransportQUIC dials WAN links as QUIC connections over UDP on the
	// server port: one stream per request, TLS 1.3 built in.
	WANTransportQUIC = "quic"
	// WANTransportTCP dials WAN links as yamux sessions over TCP on the
	// server port, for sites between which UDP is blocked. These links are
	// not encrypted (TLS on server RPC comes with mTLS for the whole
	// server port); use QUIC, or a VPN, across untrusted networks.
	WANTransportTCP = "tcp"
)

// Federation tunes how a server answers requests for other datacenters.
type Federation struct {
	// Timeout is how long a request for another datacenter may wait for a
	// link to a reachable server of it before failing as unreachable. It
	// bounds the wait for a link, not the request. Default 2s; must be
	// positive.
	Timeout time.Duration `config:"timeout"`
	// StaleView answers ?stale health reads for another datacenter from a
	// local view of that datacenter's answer, kept current by a blocking
	// query over the WAN link, instead of one WAN round trip per request.
	// Default true.
	StaleView bool `config:"stale_view"`
	// Links are the other datacenters this one gossips with directly over
	// the WAN, e.g. [dc1] on each spoke of a hub dc1 when the spokes cannot
	// reach each other: servers of other datacenters are kept out of this
	// server's WAN pool, so it never probes them or marks them failed, and
	// requests for them are relayed through a linked datacenter. Empty (the
	// default) learns them: a server of another datacenter is linked once
	// it answers a direct probe, so where every datacenter reaches every
	// other nothing changes. Names neither this datacenter nor one twice.
	// Servers only.
	Links []string `config:"links"`
}

func defaultFederation() Federation {
	return Federation{
		Timeout:   2 * time.Second,
		StaleView: true,
	}
}

// AdvertiseWAN returns the IP servers of other datacenters reach this server
// at: AdvertiseAddrWAN, else AdvertiseAddr. It is empty when neither is set;
// the agent then picks the address as it does for AdvertiseAddr.
func (c *Config) AdvertiseWAN() string {
	if c.AdvertiseAddrWAN != "" {
		return c.AdvertiseAddrWAN
	}
	return c.AdvertiseAddr
}

// joinsWAN reports whether any WAN join address is configured.
func (c *Config) joinsWAN() bool {
	return len(c.StartJoinWAN) > 0 || len(c.RetryJoinWAN) > 0
}

// wan checks the WAN federation keys.
func (v *validation) wan() {
	c := v.c
	v.addrs("start_join_wan", c.StartJoinWAN)
	v.addrs("retry_join_wan", c.RetryJoinWAN)
	if !c.Server && !c.Dev { // a dev agent is a server
		if len(c.StartJoinWAN) > 0 {
			v.failf("start_join_wan", "only servers join the WAN pool; set server: true")
		}
		if len(c.RetryJoinWAN) > 0 {
			v.failf("retry_join_wan", "only servers join the WAN pool; set server: true")
		}
	}
	v.positive("retry_interval_wan", c.RetryIntervalWAN)
	if c.RetryMaxWAN < 0 {
		v.failf("retry_max_wan", "must not be negative, got %d", c.RetryMaxWAN)
	}
	if c.AdvertiseAddrWAN != "" {
		v.ip("advertise_addr_wan", c.AdvertiseAddrWAN, false)
	}
	switch c.WANTransport {
	case WANTransportQUIC, WANTransportTCP:
	default:
		v.failf("wan_transport", "must be quic or tcp, got %q", c.WANTransport)
	}
	v.positive("federation.timeout", c.Federation.Timeout)
	v.links()
}

// links checks federation.links.
func (v *validation) links() {
	c := v.c
	if len(c.Federation.Links) > 0 && !c.Server && !c.Dev {
		v.failf("federation.links", "only servers join the WAN pool; set server: true")
	}
	seen := map[string]bool{}
	for _, dc := range c.Federation.Links {
		switch {
		case !isDatacenterName(dc):
			v.failf("federation.links", "must be datacenter names (lowercase letters, digits, '-' and '_'), got %q", dc)
		case dc == c.Datacenter:
			v.failf("federation.links", "%q is this agent's own datacenter, which is always linked; remove it", dc)
		case seen[dc]:
			v.failf("federation.links", "%q is named twice; name each datacenter once", dc)
		}
		seen[dc] = true
	}
}

// readable checks that path is a file this process can open for reading.
func (v *validation) readable(key, path string) {
	f, err := os.Open(path)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		v.failf(key, "cannot read %q: %w", path, err)
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		v.failf(key, "cannot read %q: is a directory", path)
	}
}

// joinAnd renders ["a", "b", "c"] as "a, b and c".
func joinAnd(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	s := list[0]
	for _, x := range list[1 : len(list)-1] {
		s += ", " + x
	}
	return s + " and " + list[len(list)-1]
}
