package agent

import (
	"context"
	"errors"

	"github.com/meridian/meridian/acl"
	"github.com/meridian/meridian/catalog"
	"github.com/meridian/meridian/dns"
	"github.com/meridian/meridian/rpc"
)

var _ dns.QueryBackend = dnsBackend{}

// ExecuteQuery runs a prepared query for NAME.query[.DC] names through the
// agent's RPC, with the query's failover; the agent's node is where a query
// with Near "_agent" sorts from. An unknown query answers nil.
func (b dnsBackend) ExecuteQuery(ctx context.Context, dc, name string) (*catalog.QueryExecuteResponse, error) {
	args := rpc.Query[catalog.QueryExecuteRequest]{
		QueryOptions: rpc.QueryOptions{Datacenter: dc, AllowStale: b.a.cfg.DNSConfig.AllowStale},
		Args:         catalog.QueryExecuteRequest{IDOrName: name, Agent: b.a.cfg.NodeName},
	}
	var reply rpc.Answer[catalog.QueryExecuteResponse]
	if err := b.a.RPC(ctx, rpc.MethodQueryExecute, &args, &reply); err != nil {
		if errors.Is(err, rpc.ErrNotFound) {
			return nil, nil
		}
		return nil, dnsError(err)
	}
	if b.a.cfg.ACL.Enabled {
		nodes := reply.Value.Nodes[:0:0]
		for _, n := range reply.Value.Nodes {
			if n.Service != nil && n.Node != nil && b.a.dnsAllowed(ctx, acl.ResService, n.Service.Service) && b.a.dnsAllowed(ctx, acl.ResNode, n.Node.Node) {
				nodes = append(nodes, n)
			}
		}
		reply.Value.Nodes = nodes
	}
	return &reply.Value, nil
}
