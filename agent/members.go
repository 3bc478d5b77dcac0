package agent

import (
	"context"
	"fmt"

	"github.com/meridian/meridian/httpapi"
	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
)

var _ httpapi.Agent = (*Agent)(nil)

// Self describes the agent for /v1/agent/self.
func (a *Agent) Self() httpapi.Self {
	self := httpapi.Self{
		Config: httpapi.SelfConfig{
			Datacenter:        a.cfg.Datacenter,
			PrimaryDatacenter: a.cfg.Datacenter,
			NodeName:          a.cfg.NodeName,
			NodeID:            a.nodeID,
			Server:            a.cfg.Server,
			Version:           Version,
		},
		Member: toHTTPMember(a.lan.LocalMember()),
		Stats:  a.stats(),
		Meta:   map[string]string{},
	}
	return self
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
