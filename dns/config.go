package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config holds the knobs of a DNS Server. Start from DefaultConfig and
// override what differs; New copies the Config and never writes to it.
type Config struct {
	// Domain is the zone the server is authoritative for, a fully qualified
	// name. Default "consul.".
	Domain string
	// AltDomain is a second zone answered exactly like Domain (for example
	// "meridian."); answers use the domain the question was asked in.
	// Empty disables it.
	AltDomain string
	// Datacenter is the local datacenter, used when a name carries none.
	// Required.
	Datacenter string
	// NodeName is the local agent's node name, the target of the NS records
	// of the zone (with its address as glue when the Backend knows it).
	// Empty names "ns.<domain>" without glue.
	NodeName string

	// NodeTTL is the TTL of node records (NODE.node, HEXIP.addr). Default 0.
	NodeTTL time.Duration
	// ServiceTTL maps a service name to the TTL of its records. A key ending
	// in "*" is a prefix ("web*"), the longest prefix wins, and "*" alone is
	// the default for every other service. Keys are case-insensitive.
	// Unlisted services get 0.
	ServiceTTL map[string]time.Duration

	// OnlyPassing leaves out instances with a warning check; critical
	// instances are never answered.
	OnlyPassing bool
	// AllowStale lets lookups be answered from the local view kept fresh by
	// blocking queries (any server's data). When false every lookup asks the
	// Backend directly, which costs a round trip per query. Default true.
	AllowStale bool
	// MaxStale bounds how old the view may be since its last successful
	// refresh before lookups fail with SERVFAIL instead of answering from
	// it. Default 87600h, as Consul.
	MaxStale time.Duration

	// ARecordLimit caps the number of A/AAAA records of a service answer,
	// over any transport. 0 means no limit.
	ARecordLimit int
	// UDPAnswerLimit caps the number of answers of a UDP response to a
	// query without EDNS0 (a 512-byte client). 0 means no limit. Default 3,
	// as Consul.
	UDPAnswerLimit int
	// EnableTruncate sets the TC bit when UDPAnswerLimit left records out,
	// so clients retry over TCP. Answers that do not fit the client's buffer
	// are always trimmed with TC set.
	EnableTruncate bool

	// Recursors are the "host:port" (or bare IP, port 53) DNS servers that
	// names outside the domain are forwarded to, tried in order. Empty
	// answers such names REFUSED.
	Recursors []string
	// RecursorTimeout bounds one exchange with one recursor. Default 2s.
	RecursorTimeout time.Duration

	// QueryTimeout bounds what one query waits for the Backend (the first
	// fetch of a view entry, a node lookup) before answering SERVFAIL.
	// Default 2s.
	QueryTimeout time.Duration
	// ViewWait is the wait of the blocking queries that keep the view
	// fresh; a change is seen at once, ViewWait only bounds how long an
	// unchanged entry goes without a round trip. Default 5m.
	ViewWait time.Duration
	// ViewIdle is how long a view entry lives without being looked up; its
	// goroutine ends at the first refresh after that. Default 5m.
	ViewIdle time.Duration
	// TCPWriteTimeout bounds each answer written on a TCP connection: a
	// client that does not read its answers for that long (its window
	// full) has its connection closed, rather than holding the goroutine
	// and socket that serve it for as long as it likes. An honest client
	// reading 16 pipelined 64KiB answers needs milliseconds. Default 10s.
	TCPWriteTimeout time.Duration

	// MaxViews bounds the number of view entries (one goroutine each).
	// Lookups past it ask the Backend directly. Default 4096.
	MaxViews int

	// Failover, when set, lists the datacenters a NAME.service lookup
	// without a datacenter tries, in order, when the local one has no
	// healthy instance (the agent's failover policy); nil or an empty
	// list means none.
	Failover func(service string) []string
	// ServiceAllowed, when set, is asked before a service is answered (the
	// agent's ACL check with its default token); false answers NXDOMAIN,
	// as for a service that does not exist. It must be cheap.
	ServiceAllowed func(service string) bool
	// NodeAllowed, when set, is asked of the node of every instance a
	// service lookup would answer (node:read with the default token, as
	// Consul asks): an instance whose node is refused is left out, and a
	// lookup left with none answers NXDOMAIN. It must be cheap; it is asked
	// once per run of instances on the same node.
	NodeAllowed func(node string) bool
	// FailoverTXT adds a TXT record "failover-datacenter=DC" to the
	// additional section of an answer served by another datacenter.
	FailoverTXT bool

	// Logger receives the server's logs. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of Consul's DNS interface. Datacenter
// must still be set.
func DefaultConfig() Config {
	return Config{
		Domain:          "consul.",
		Datacenter:      "dc1",
		AllowStale:      true,
		MaxStale:        87600 * time.Hour,
		UDPAnswerLimit:  3,
		RecursorTimeout: 2 * time.Second,
		QueryTimeout:    2 * time.Second,
		TCPWriteTimeout: 10 * time.Second,
		ViewWait:        5 * time.Minute,
		ViewIdle:        5 * time.Minute,
		MaxViews:        4096,
	}
}

// Validate reports the first field that cannot work.
func (c *Config) Validate() error {
	if err := validDomain(c.Domain); err != nil {
		return fmt.Errorf("domain: %w", err)
	}
	if c.AltDomain != "" {
		if err := validDomain(c.AltDomain); err != nil {
			return fmt.Errorf("alt_domain: %w", err)
		}
		if strings.EqualFold(c.AltDomain, c.Domain) {
			return errors.New("alt_domain: same as domain")
		}
	}
	if c.Datacenter == "" || strings.Contains(c.Datacenter, ".") {
		return fmt.Errorf("datacenter %q: must be one non-empty label", c.Datacenter)
	}
	for name, d := range map[string]time.Duration{
		"node_ttl": c.NodeTTL, "max_stale": c.MaxStale, "recursor_timeout": c.RecursorTimeout,
		"query_timeout": c.QueryTimeout, "view_wait": c.ViewWait, "view_idle": c.ViewIdle,
		"tcp_write_timeout": c.TCPWriteTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("%s: negative duration %v", name, d)
		}
	}
	for k, d := range c.ServiceTTL {
		if d < 0 {
			return fmt.Errorf("service_ttl %q: negative duration %v", k, d)
		}
	}
	if c.RecursorTimeout == 0 || c.QueryTimeout == 0 || c.ViewWait == 0 || c.ViewIdle == 0 || c.TCPWriteTimeout == 0 {
		return errors.New("recursor_timeout, query_timeout, view_wait, view_idle and tcp_write_timeout must be positive")
	}
	if c.ARecordLimit < 0 || c.UDPAnswerLimit < 0 || c.MaxViews < 0 {
		return errors.New("a_record_limit, udp_answer_limit and max_views must not be negative")
	}
	for _, r := range c.Recursors {
		if _, err := recursorAddr(r); err != nil {
			return fmt.Errorf("recursors: %w", err)
		}
	}
	return nil
}

func validDomain(d string) error {
	if d == "" || d == "." || !strings.HasSuffix(d, ".") || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return fmt.Errorf("%q is not a fully qualified domain like \"consul.\"", d)
	}
	return nil
}

// recursorAddr normalises a recursor to host:port, port 53 by default.
func recursorAddr(r string) (string, error) {
	if ip := net.ParseIP(r); ip != nil {
		return net.JoinHostPort(r, "53"), nil
	}
	host, port, err := net.SplitHostPort(r)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("recursor %q: want ip or host:port", r)
	}
	return r, nil
}

// ttlFor resolves a service's TTL from ServiceTTL.
func (c *Config) ttlFor(service string) uint32 {
	best, bestLen, found := time.Duration(0), -1, false
	for k, d := range c.ServiceTTL {
		k = strings.ToLower(k)
		switch {
		case k == service:
			return seconds(d)
		case strings.HasSuffix(k, "*"):
			p := k[:len(k)-1]
			if strings.HasPrefix(service, p) && len(p) > bestLen {
				best, bestLen, found = d, len(p), true
			}
		}
	}
	if found {
		return seconds(best)
	}
	return 0
}

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s > 1<<31-1 {
		s = 1<<31 - 1
	}
	return uint32(s)
}
