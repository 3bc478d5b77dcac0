package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/dns"
	"github.com/meridian/meridian/rpc"
)

// startDNS serves the DNS interface on client_addr's DNS port.
func (a *Agent) startDNS() error {
	cfg := dns.DefaultConfig()
	cfg.Domain = a.cfg.Domain
	cfg.AltDomain = a.cfg.AltDomain
	cfg.Datacenter = a.cfg.Datacenter
	cfg.NodeName = a.cfg.NodeName
	d := a.cfg.DNSConfig
	cfg.NodeTTL = d.NodeTTL
	cfg.ServiceTTL = d.ServiceTTLs()
	cfg.OnlyPassing = d.OnlyPassing
	cfg.AllowStale = d.AllowStale
	cfg.MaxStale = d.MaxStale
	cfg.ARecordLimit = d.ARecordLimit
	cfg.UDPAnswerLimit = d.UDPAnswerLimit
	cfg.EnableTruncate = d.EnableTruncate
	cfg.Recursors = a.cfg.Recursors
	cfg.RecursorTimeout = d.RecursorTimeout
	cfg.Failover = a.FailoverTargets
	cfg.FailoverTXT = d.FailoverTXT
	if a.cfg.ACL.Enabled {
		cfg.ServiceAllowed = func(service string) bool { return a.dnsAllowed(a.ctx, acl.ResService, service) }
		cfg.NodeAllowed = func(node string) bool { return a.dnsAllowed(a.ctx, acl.ResNode, node) }
	}
	cfg.Logger = a.logger.With("component", "dns")
	srv, err := dns.New(cfg, dnsBackend{a})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	addr, err := srv.Listen(net.JoinHostPort(a.cfg.BindDNS(), strconv.Itoa(a.cfg.Ports.DNS)))
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	a.dns, a.dnsAddr = srv, addr
	return nil
}

// DNSAddr is the address the DNS interface answers on.
func (a *Agent) DNSAddr() string {
	if a.dnsAddr == nil {
		return ""
	}
	return a.dnsAddr.String()
}

// dnsBackend answers the DNS server's lookups through the agent's RPC: in
// process on a server, from a server on a client. The DNS server keeps a
// view of each service fed by blocking queries, so a lookup does not cost
// an RPC.
type dnsBackend struct{ a *Agent }

var _ dns.Backend = dnsBackend{}

func (b dnsBackend) ServiceNodes(ctx context.Context, dc, service string, minIndex uint64, wait time.Duration) (uint64, []*catalog.CheckServiceNode, error) {
	args := rpc.Query[catalog.ServiceRequest]{
		QueryOptions: rpc.QueryOptions{Datacenter: dc, AllowStale: b.a.cfg.DNSConfig.AllowStale, MinIndex: minIndex, MaxWait: wait},
		Args:         catalog.ServiceRequest{Service: service},
	}
	var reply rpc.Answer[[]*catalog.CheckServiceNode]
	if err := b.a.RPC(ctx, rpc.MethodHealthService, &args, &reply); err != nil {
		return 0, nil, dnsError(err)
	}
	return reply.Index, reply.Value, nil
}

func (b dnsBackend) Node(ctx context.Context, dc, name string) (*catalog.Node, error) {
	args := rpc.Query[catalog.NodeRequest]{
		QueryOptions: rpc.QueryOptions{Datacenter: dc, AllowStale: b.a.cfg.DNSConfig.AllowStale},
		Args:         catalog.NodeRequest{Node: name},
	}
	var reply rpc.Answer[*catalog.NodeServices]
	if err := b.a.RPC(ctx, rpc.MethodCatalogNode, &args, &reply); err != nil {
		return nil, dnsError(err)
	}
	if reply.Value == nil || !b.a.dnsAllowed(ctx, acl.ResNode, name) {
		return nil, nil
	}
	return reply.Value.Node, nil
}

// KnownDatacenter reports whether dc exists: a server asks its WAN routing
// table; a client, which has none, lets its server tell (an unknown DC's
// lookup then fails with rpc.ErrNoPathToDC, answered NXDOMAIN all the same).
func (b dnsBackend) KnownDatacenter(dc string) bool {
	if dc == b.a.cfg.Datacenter || b.a.server == nil {
		return true
	}
	known, _ := b.a.server.DatacenterStatus(dc)
	return known
}

// dnsError maps RPC errors onto what DNS answers: an unknown datacenter is
// NXDOMAIN, anything else SERVFAIL.
func dnsError(err error) error {
	if errors.Is(err, rpc.ErrNoPathToDC) {
		return fmt.Errorf("%w: %w", dns.ErrNoSuchDatacenter, err)
	}
	return fmt.Errorf("%w: %w", dns.ErrUnreachable, err)
}
