package agent

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

var _ httpapi.Agent = (*Agent)(nil)

// Self describes the agent for /v1/agent/self.
func (a *Agent) Self() httpapi.Self {
	primary := a.cfg.PrimaryDatacenter
	if primary == "" {
		primary = a.cfg.Datacenter
	}
	self := httpapi.Self{
		Config: httpapi.SelfConfig{
			Datacenter:        a.cfg.Datacenter,
			PrimaryDatacenter: primary,
			NodeName:          a.cfg.NodeName,
			NodeID:            a.nodeID,
			Server:            a.cfg.Server,
			Version:           Version,
		},
		DebugConfig: a.debugConfig(primary),
		Member:      toHTTPMember(a.lan.LocalMember()),
		Stats:       a.stats(),
		Meta:        map[string]string{},
	}
	if c, err := a.lan.Coordinate(); err == nil && c != nil {
		self.Coord = &catalog.Coord{Vec: slices.Clone(c.Vec), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
	}
	return self
}

// debugConfig is the DebugConfig of /v1/agent/self: the addresses the
// agent binds and advertises.
func (a *Agent) debugConfig(primary string) httpapi.SelfDebugConfig {
	tcp := func(ip string, port int) string { return "tcp://" + net.JoinHostPort(ip, strconv.Itoa(port)) }
	p := a.cfg.Ports
	lan, _ := a.advertiseIP()
	d := httpapi.SelfDebugConfig{
		Datacenter: a.cfg.Datacenter, PrimaryDatacenter: primary, NodeName: a.cfg.NodeName, NodeID: a.nodeID,
		ServerMode: a.cfg.Server, BindAddr: a.cfg.BindAddr, AdvertiseAddrLAN: lan,
		SerfAdvertiseAddrLAN: tcp(lan, p.SerfLAN), SerfBindAddrLAN: tcp(a.cfg.BindAddr, p.SerfLAN),
		ClientAddrs: []string{a.cfg.ClientAddr}, HTTPAddrs: []string{}, DNSAddrs: []string{},
		HTTPPort: p.HTTP, HTTPSPort: p.HTTPS, DNSPort: p.DNS, ServerPort: p.Server, SerfPortLAN: p.SerfLAN,
		SerfPortWAN: -1, GRPCPort: -1, Version: Version,
	}
	if p.HTTP > 0 {
		d.HTTPAddrs = append(d.HTTPAddrs, tcp(a.cfg.ClientAddr, p.HTTP))
	}
	if p.HTTPS > 0 {
		d.HTTPAddrs = append(d.HTTPAddrs, tcp(a.cfg.ClientAddr, p.HTTPS))
	}
	if p.DNS > 0 {
		d.DNSAddrs = append(d.DNSAddrs, tcp(a.cfg.ClientAddr, p.DNS), "udp://"+net.JoinHostPort(a.cfg.ClientAddr, strconv.Itoa(p.DNS)))
	}
	if a.cfg.Server {
		wan := a.cfg.AdvertiseWAN()
		if wan == "" {
			wan = lan
		}
		d.AdvertiseAddrWAN, d.SerfPortWAN = wan, p.SerfWAN
		d.SerfAdvertiseAddrWAN, d.SerfBindAddrWAN = tcp(wan, p.SerfWAN), tcp(a.cfg.BindAddr, p.SerfWAN)
	}
	return d
}

// Members lists the LAN pool, or with wan the WAN pool (servers only).
func (a *Agent) Members(wan bool) ([]httpapi.Member, error) {
	members := a.lan.Members()
	if wan {
		var err error
		if members, err = a.wanMembers(); err != nil {
			return nil, err
		}
	}
	out := make([]httpapi.Member, 0, len(members))
	for _, m := range members {
		out = append(out, toHTTPMember(m))
	}
	return out, nil
}

// Join joins the LAN pool (or with wan the WAN pool) through the agent at
// addr.
func (a *Agent) Join(ctx context.Context, addr string, wan bool) error {
	join := a.lan.Join
	if wan {
		if a.wan == nil {
			return fmt.Errorf("%w: only servers join the WAN gossip pool", rpc.ErrBadRequest)
		}
		join = a.wan.Join
	}
	_, err := join(ctx, []string{addr})
	return err
}

// ForceLeave marks a failed member of the LAN pool (or with wan of the WAN
// pool, named "node.dc") as left.
func (a *Agent) ForceLeave(node string, prune, wan bool) error {
	if node == "" {
		return fmt.Errorf("%w: force-leave needs a node name", rpc.ErrBadRequest)
	}
	if wan {
		if a.wan == nil {
			return fmt.Errorf("%w: only servers are in the WAN gossip pool", rpc.ErrBadRequest)
		}
		return a.wan.ForceLeave(node, prune)
	}
	return a.lan.ForceLeave(node, prune)
}

func toHTTPMember(m lan.Member) httpapi.Member {
	return httpapi.Member{
		Name:        m.Name,
		Addr:        m.Addr.String(),
		Port:        m.Port,
		Tags:        m.Tags,
		Status:      m.Status.Code(),
		ProtocolMin: m.ProtocolMin,
		ProtocolMax: m.ProtocolMax,
		ProtocolCur: m.ProtocolCur,
		DelegateMin: m.DelegateMin,
		DelegateMax: m.DelegateMax,
		DelegateCur: m.DelegateCur,
	}
}
