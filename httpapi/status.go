package httpapi

import (
	"net/http"

	"github.com/meridian/meridian/rpc"
)

// statusLeader and statusPeers take ?dc= as Consul's.
func (s *Server) statusLeader(_ http.ResponseWriter, r *http.Request) (any, error) {
	args := rpc.Query[struct{}]{QueryOptions: rpc.QueryOptions{Datacenter: r.URL.Query().Get("dc")}}
	var leader string
	if err := s.agent.RPC(r.Context(), rpc.MethodStatusLeader, &args, &leader); err != nil {
		return nil, err
	}
	return leader, nil
}

func (s *Server) statusPeers(_ http.ResponseWriter, r *http.Request) (any, error) {
	args := rpc.Query[struct{}]{QueryOptions: rpc.QueryOptions{Datacenter: r.URL.Query().Get("dc")}}
	var peers []string
	if err := s.agent.RPC(r.Context(), rpc.MethodStatusPeers, &args, &peers); err != nil {
		return nil, err
	}
	if peers == nil {
		peers = []string{}
	}
	return peers, nil
}

func (s *Server) raftConfiguration(w http.ResponseWriter, r *http.Request) (any, error) {
	opts, err := s.parseQueryOptions(r)
	if err != nil {
		return nil, err
	}
	args := rpc.Query[struct{}]{QueryOptions: opts}
	var reply rpc.Answer[rpc.RaftConfiguration]
	if err := s.agent.RPC(r.Context(), rpc.MethodRaftConfig, &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	return uncached{reply.Value}, nil
}
