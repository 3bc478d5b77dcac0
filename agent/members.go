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
		Stats:  map[string]map[string]string{},
		Meta:   map[string]string{},
	}
	if a.server != nil {
		self.Stats["raft"] = a.server.Stats()
	}
	return self
}

// Members lists the LAN pool; the WAN pool arrives with federation.
func (a *Agent) Members(wan bool) ([]httpapi.Member, error) {
	if wan {
		return nil, fmt.Errorf("%w: this agent is not in a WAN gossip pool", rpc.ErrBadRequest)
	}
	members := a.lan.Members()
	out := make([]httpapi.Member, 0, len(members))
	for _, m := range members {
		out = append(out, toHTTPMember(m))
	}
	return out, nil
}

// Join joins the LAN pool through the agent at addr.
func (a *Agent) Join(ctx context.Context, addr string, wan bool) error {
	if wan {
		return fmt.Errorf("%w: this agent is not in a WAN gossip pool", rpc.ErrBadRequest)
	}
	_, err := a.lan.Join(ctx, []string{addr})
	return err
}

// ForceLeave marks a failed member as left.
func (a *Agent) ForceLeave(node string, prune bool) error {
	if node == "" {
		return fmt.Errorf("%w: force-leave needs a node name", rpc.ErrBadRequest)
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
