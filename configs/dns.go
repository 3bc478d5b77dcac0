package configs

import (
	"strings"
	"time"
)

// DNSConfig tunes the DNS interface (the dns_config block, as Consul's).
type DNSConfig struct {
	// AllowStale lets any server's view answer (default true); with it off
	// every lookup is read from the leader.
	AllowStale bool `config:"allow_stale"`
	// MaxStale is how far behind the leader a stale answer may be.
	MaxStale time.Duration `config:"max_stale"`
	// NodeTTL is the TTL of node records; 0 by default, as Consul.
	NodeTTL time.Duration `config:"node_ttl"`
	// ServiceTTL maps service names ("web", a prefix "web*", or "*" for
	// every service) to the TTL of their records, as durations ("10s").
	ServiceTTL map[string]string `config:"service_ttl"`
	// OnlyPassing leaves instances with a warning check out of answers too.
	OnlyPassing bool `config:"only_passing"`
	// ARecordLimit caps the A/AAAA records of one answer (0: no cap).
	ARecordLimit int `config:"a_record_limit"`
	// UDPAnswerLimit caps the records of a UDP answer to a client that
	// sent no EDNS0 buffer size (default 3, as Consul).
	UDPAnswerLimit int `config:"udp_answer_limit"`
	// EnableTruncate sets the TC bit when UDPAnswerLimit trimmed an answer.
	EnableTruncate bool `config:"enable_truncate"`
	// RecursorTimeout bounds each query forwarded to a recursor.
	RecursorTimeout time.Duration `config:"recursor_timeout"`
	// FailoverTXT adds a TXT record "failover-datacenter=DC" to the
	// additional section of a NAME.service answer that the failover policy
	// served from another datacenter.
	FailoverTXT bool `config:"failover_txt"`
}

func defaultDNSConfig() DNSConfig {
	return DNSConfig{
		AllowStale:      true,
		MaxStale:        87600 * time.Hour,
		UDPAnswerLimit:  3,
		RecursorTimeout: 2 * time.Second,
	}
}

// ServiceTTLs returns ServiceTTL with its durations parsed (Validate has
// refused values that do not parse).
func (d DNSConfig) ServiceTTLs() map[string]time.Duration {
	if len(d.ServiceTTL) == 0 {
		return nil
	}
	out := make(map[string]time.Duration, len(d.ServiceTTL))
	for name, v := range d.ServiceTTL {
		if ttl, err := time.ParseDuration(v); err == nil {
			out[strings.ToLower(name)] = ttl
		}
	}
	return out
}

func (v *validation) dns() {
	c := v.c
	if c.Domain == "" || strings.Contains(c.Domain, "..") {
		v.failf("domain", "must be a DNS domain such as consul., got %q", c.Domain)
	}
	if c.AltDomain != "" && strings.Contains(c.AltDomain, "..") {
		v.failf("alt_domain", "must be a DNS domain, got %q", c.AltDomain)
	}
	v.addrs("recursors", c.Recursors)
	d := c.DNSConfig
	v.notNegative("dns_config.max_stale", d.MaxStale)
	v.notNegative("dns_config.node_ttl", d.NodeTTL)
	v.positive("dns_config.recursor_timeout", d.RecursorTimeout)
	if d.ARecordLimit < 0 {
		v.failf("dns_config.a_record_limit", "must not be negative, got %d", d.ARecordLimit)
	}
	if d.UDPAnswerLimit < 0 {
		v.failf("dns_config.udp_answer_limit", "must not be negative, got %d", d.UDPAnswerLimit)
	}
	for name, ttl := range d.ServiceTTL {
		if dur, err := time.ParseDuration(ttl); err != nil || dur < 0 {
			v.failf("dns_config.service_ttl."+name, "must be a duration such as 10s, got %q", ttl)
		}
	}
}
